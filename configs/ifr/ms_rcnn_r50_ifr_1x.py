# Mask Scoring R-CNN: IFR refines the mask head; the MaskIoU head is mmdet's.
_base_ = ['mmdet::ms_rcnn/ms-rcnn_r50_fpn_1x_coco.py', './_base_/ifr_runtime.py']

model = dict(roi_head=dict(mask_head=dict(type='IFRConvFCMaskHead')))
