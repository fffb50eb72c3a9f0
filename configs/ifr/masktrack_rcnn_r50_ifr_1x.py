# Video instance segmentation (paper Table 4); the detector's mask head is
# the FCN mask head.
_base_ = [
    'mmdet::masktrack_rcnn/masktrack-rcnn_mask-rcnn_r50_fpn_8xb1-12e_youtubevis2019.py',
    './_base_/ifr_runtime.py'
]

# At inference each frame's mask RoIs start from the previous frame's
# equilibria (IFRMaskTrackRCNN: mmdet's MaskTrackRCNN with a warm start, the
# same weights; model.warm_start.enabled=False solves every frame from zero,
# as the paper).
model = dict(
    type='IFRMaskTrackRCNN',
    warm_start=dict(enabled=True),
    detector=dict(roi_head=dict(mask_head=dict(type='IFRConvFCMaskHead'))))
