# One mask head config, replicated by mmdet for each of the three stages.
_base_ = ['mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py', './_base_/ifr_runtime.py']

model = dict(roi_head=dict(mask_head=dict(type='IFRConvFCMaskHead')))
