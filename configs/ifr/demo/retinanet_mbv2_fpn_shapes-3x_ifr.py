# The IFR side of the 3x RetinaNet demo pair (as retinanet_mbv2_fpn_shapes_ifr.py).
_base_ = ['./retinanet_mbv2_fpn_shapes-3x_baseline.py', '../_base_/ifr_hooks.py']

model = dict(bbox_head=dict(type='IFRRetinaHead'))
