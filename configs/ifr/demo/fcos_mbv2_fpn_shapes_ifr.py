# The IFR side of the FCOS demo pair: IFR in place of the classification and
# regression towers (as fcos_r50_ifr_1x.py).
_base_ = ['./fcos_mbv2_fpn_shapes_baseline.py', '../_base_/ifr_hooks.py']

model = dict(bbox_head=dict(type='IFRFCOSHead'))
