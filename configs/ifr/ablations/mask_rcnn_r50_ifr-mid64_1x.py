# Table 9: 64 channels between the block's two convs.
_base_ = '../mask_rcnn_r50_ifr_1x.py'

model = dict(roi_head=dict(mask_head=dict(ifr_cfg=dict(block=dict(mid_channels=64)))))
