# Table 8: no shortcut around the two convs (the injection H + X is kept).
_base_ = '../mask_rcnn_r50_ifr_1x.py'

model = dict(roi_head=dict(mask_head=dict(ifr_cfg=dict(block=dict(form='plain')))))
