# Table 6, "explicit / unrolling": 4 weight-independent blocks (5.0 M params).
# Nothing to solve, hence no IFR hooks.
_base_ = '../mask_rcnn_r50_ifr_1x.py'

model = dict(roi_head=dict(mask_head=dict(ifr_cfg=dict(mode='explicit'))))
custom_hooks = []
