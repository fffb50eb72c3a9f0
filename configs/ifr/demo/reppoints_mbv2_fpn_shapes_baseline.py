# RepPoints on the CPU demo: the demo's data, backbone, schedule and optimiser
# (mask-rcnn_mbv2_fpn_shapes_baseline.py) with mmdet's RepPoints
# (reppoints/reppoints-moment_r50_fpn-gn_head-gn_1x_coco.py: moment
# transform, GN in FPN and head) in place of Mask R-CNN: FPN P3-P7 (strides
# 8-128), the head's towers at 128 channels (the demo budget of the MEInst
# demo; 256 on COCO). A box detector: scored on box AP only, and, as mmdet's
# config, it loads no masks.
#
# Prerequisites: the demo's (data/shapes and the MobileNetV2 weights, see
# mask-rcnn_mbv2_fpn_shapes_baseline.py). Train from the repository root:
#   python tools/train.py configs/ifr/demo/reppoints_mbv2_fpn_shapes_baseline.py
_base_ = './mask-rcnn_mbv2_fpn_shapes_baseline.py'

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale={{_base_.img_scale}}, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale={{_base_.img_scale}}, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(metric='bbox')
test_evaluator = val_evaluator

norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
model = dict(
    _delete_=True,
    type='RepPointsDetector',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone={{_base_.model.backbone}},
    neck=dict(
        type='FPN',
        in_channels=[32, 96, 320],
        out_channels=128,
        start_level=0,
        add_extra_convs='on_input',
        num_outs=5,
        norm_cfg=norm_cfg),
    bbox_head=dict(
        type='RepPointsHead',
        num_classes={{_base_.num_classes}},
        in_channels=128,
        feat_channels=128,
        point_feat_channels=128,
        stacked_convs=3,
        num_points=9,
        gradient_mul=0.1,
        point_strides=[8, 16, 32, 64, 128],
        point_base_scale=4,
        norm_cfg=norm_cfg,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox_init=dict(type='SmoothL1Loss', beta=0.11, loss_weight=0.5),
        loss_bbox_refine=dict(type='SmoothL1Loss', beta=0.11, loss_weight=1.0),
        transform_method='moment'),
    train_cfg=dict(
        init=dict(
            assigner=dict(type='PointAssigner', scale=4, pos_num=1),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        refine=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.4,
                min_pos_iou=0,
                ignore_iof_thr=-1),
            allowed_border=-1,
            pos_weight=-1,
            debug=False)),
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.5),
        # As in the demo, 20 detections for at most 8 objects per image.
        max_per_img=20))
