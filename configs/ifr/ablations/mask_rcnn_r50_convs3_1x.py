# Table 1: mmdet's Mask R-CNN R-50 1x with 3 stacked 3x3 conv(s) in the mask
# head instead of 4 (the 4-conv row is mmdet's own mask-rcnn_r50_fpn_1x_coco).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

model = dict(roi_head=dict(mask_head=dict(num_convs=3)))
