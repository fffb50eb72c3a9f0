# Video instance segmentation (paper Table 4); the detector's mask head is
# the FCN mask head.
_base_ = [
    'mmdet::masktrack_rcnn/masktrack-rcnn_mask-rcnn_r50_fpn_8xb1-12e_youtubevis2019.py',
    './_base_/ifr_runtime.py'
]

model = dict(detector=dict(roi_head=dict(mask_head=dict(type='IFRConvFCMaskHead'))))
