# BoxInst on the CPU demo: the demo's data, backbone, schedule and optimiser
# (mask-rcnn_mbv2_fpn_shapes_baseline.py) with mmdet's BoxInst
# (boxinst/boxinst_r50_fpn_ms-90k_coco.py) in place of Mask R-CNN: FPN P3-P7
# (strides 8-128) and BoxInst's FCOS-style head and dynamic mask head, the
# towers at 128 channels (the demo budget of the MEInst demo; 256 on COCO).
#
# BoxInst learns masks from boxes alone: the training pipeline loads no masks
# (BoxInstDataPreprocessor builds the box masks and the pairwise colour-
# similarity targets), as mmdet's config does. Evaluation is on the GT masks
# (segm AP), which the demo's val/test pipeline loads.
#
# Prerequisites: the demo's (data/shapes and the MobileNetV2 weights, see
# mask-rcnn_mbv2_fpn_shapes_baseline.py). Train from the repository root:
#   python tools/train.py configs/ifr/demo/boxinst_mbv2_fpn_shapes_baseline.py
_base_ = './mask-rcnn_mbv2_fpn_shapes_baseline.py'

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale={{_base_.img_scale}}, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

model = dict(
    _delete_=True,
    type='BoxInst',
    data_preprocessor=dict(
        type='BoxInstDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        mask_stride=4,
        pairwise_size=3,
        pairwise_dilation=2,
        pairwise_color_thresh=0.3,
        bottom_pixels_removed=10),
    backbone={{_base_.model.backbone}},
    neck=dict(
        type='FPN',
        in_channels=[32, 96, 320],
        out_channels=128,
        start_level=0,
        add_extra_convs='on_output',
        num_outs=5,
        relu_before_extra_convs=True),
    bbox_head=dict(
        type='BoxInstBboxHead',
        # The dynamic mask head's weights and biases: (16 + 2) x 16, 16 x 16,
        # 16 x 1 (16 mask features + 2 relative coordinates in).
        num_params=593,
        num_classes={{_base_.num_classes}},
        in_channels=128,
        stacked_convs=4,
        feat_channels=128,
        strides=[8, 16, 32, 64, 128],
        norm_on_bbox=True,
        centerness_on_reg=True,
        dcn_on_last_conv=False,
        center_sampling=True,
        conv_bias=True,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=1.0),
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    mask_head=dict(
        type='BoxInstMaskHead',
        num_layers=3,
        feat_channels=16,
        size_of_interest=8,
        mask_out_stride=4,
        topk_masks_per_img=64,
        # The pairwise (colour-similarity) term is ramped in over mmdet's
        # default 10k of its 90k iterations; the same 1/9 of the demo's 450
        # (at 10k it would stay under 5% of its weight for the whole run).
        warmup_iters=50,
        mask_feature_head=dict(
            in_channels=128,
            feat_channels=128,
            start_level=0,
            end_level=2,
            out_channels=16,
            mask_stride=8,
            num_stacked_convs=4,
            norm_cfg=dict(type='BN', requires_grad=True)),
        loss_mask=dict(
            type='DiceLoss', use_sigmoid=True, activate=True, eps=5e-6, loss_weight=1.0)),
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.6),
        # As in the demo, 20 detections for at most 8 objects per image.
        max_per_img=20,
        mask_thr=0.5))
