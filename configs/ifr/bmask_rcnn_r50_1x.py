# BMask R-CNN R-50 1x (Cheng et al., ECCV 2020) as its authors built it, on
# mmdet's Mask R-CNN R-50 1x: a boundary branch fed by 28x28 RoI features of
# P2, fused with the mask branch both ways, BCE + Dice boundary loss, and
# the mask branch trained on the box head's predicted boxes. Paper Table 2:
# 36.6 mask AP (the stock side of bmask_rcnn_r50_ifr_1x.py).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmifr'], allow_failed_imports=False)
model = dict(
    roi_head=dict(
        type='BMaskRoIHead',
        train_mask_on_pred_boxes=True,
        boundary_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=28, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[4]),
        mask_head=dict(type='BoundaryPreservingMaskHead', num_boundary_convs=2)))
