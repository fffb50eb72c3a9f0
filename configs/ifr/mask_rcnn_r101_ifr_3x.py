# Paper Table 10 (larger backbone, 3x schedule).
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r101_fpn_ms-poly-3x_coco.py', './_base_/ifr_runtime.py']

model = dict(roi_head=dict(mask_head=dict(type='IFRConvFCMaskHead')))
