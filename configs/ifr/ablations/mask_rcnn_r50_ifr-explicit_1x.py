# Table 6, "explicit / unrolling": 4 weight-independent blocks (5.0 M params).
_base_ = '../mask_rcnn_r50_ifr_1x.py'

model = dict(
    roi_head=dict(
        mask_head=dict(ifr_cfg=dict(type='IFRRefiner', mode='explicit', num_steps=4))))
custom_hooks = []
