# The IFR side of the FreeAnchor demo pair (as freeanchor_r50_ifr_1x.py).
_base_ = ['./freeanchor_mbv2_fpn_shapes_baseline.py', '../_base_/ifr_hooks.py']

model = dict(bbox_head=dict(type='IFRFreeAnchorRetinaHead'))
