# The video demo's IFR MaskTrack R-CNN trained for its warm start: besides
# mmdet's losses, each training pair's key-frame objects run 2 block
# evaluations from the reference frame's equilibria (loss_mask_warm), and
# inference warm-starts each frame with the same 2 evaluations. Compare with
# the cold IFR model of the same recipe (the base config) and the stock one
# (docs/performance.md, "Video: warm start").
_base_ = './masktrack-rcnn_mbv2_fpn_shapes-video-from-image_ifr.py'

model = dict(warm_start=dict(enabled=True, budget=2, train_loss_weight=1.0))
