# BMask R-CNN on the CPU demo: the demo's Mask R-CNN (MobileNetV2 + FPN,
# shapes data, same schedule) with BMask's RoI head and boundary-preserving
# mask head (configs/ifr/bmask_rcnn_r50_1x.py). The demo FPN has no stride-4
# level, so the boundary branch reads its 28x28 RoI features from stride 8.
_base_ = './mask-rcnn_mbv2_fpn_shapes_baseline.py'

model = dict(
    roi_head=dict(
        type='BMaskRoIHead',
        train_mask_on_pred_boxes=True,
        boundary_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=28, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[8]),
        # Both predictors start ~ N(0, 0.001), as in BMask's code and as the
        # demo Mask R-CNN's.
        mask_head=dict(type='BoundaryPreservingMaskHead', num_boundary_convs=2)))
