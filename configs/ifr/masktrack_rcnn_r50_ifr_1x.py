# Video instance segmentation (paper Table 4); the detector's mask head is
# the FCN mask head.
_base_ = [
    'mmdet::masktrack_rcnn/masktrack-rcnn_mask-rcnn_r50_fpn_8xb1-12e_youtubevis2019.py',
    './_base_/ifr_runtime.py'
]

# IFRMaskTrackRCNN is mmdet's MaskTrackRCNN that can start each frame's mask
# RoIs from the previous frame's equilibria (the same weights); off, as the
# paper, since on the demo video data it saved 6 % of the solver steps
# (docs/performance.md). model.warm_start.enabled=True turns it on.
model = dict(
    type='IFRMaskTrackRCNN',
    warm_start=dict(enabled=False),
    detector=dict(roi_head=dict(mask_head=dict(type='IFRConvFCMaskHead'))))
