_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', './_base_/ifr_runtime.py']

model = dict(roi_head=dict(mask_head=dict(type='IFRConvFCMaskHead')))
