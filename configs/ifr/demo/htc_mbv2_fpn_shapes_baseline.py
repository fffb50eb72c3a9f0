# HTC on the CPU demo: the Mask R-CNN demo's data, backbone, schedule and RoI
# set-up (mask-rcnn_mbv2_fpn_shapes_baseline.py: FPN P3-P6 at 256 channels,
# scale-4 anchors, 32 sampled RoIs, the demo's proposal and test budgets) with
# mmdet's HTC (htc/htc-without-semantic_r50_fpn_1x_coco.py) in place of Mask
# R-CNN: three interleaved box/mask stages with mask information flow.
#
# Without HTC's semantic branch: the shapes set has no semantic (stuff) maps
# to train it on. The mask heads are mmdet's HTCMaskHead with the IFR head's
# predictor init (SmallInitHTCMaskHead), so that the pair
# (htc_mbv2_fpn_shapes_ifr.py) differs in the mask towers only.
#
# Prerequisites: the demo's (data/shapes and the MobileNetV2 weights, see
# mask-rcnn_mbv2_fpn_shapes_baseline.py). Train from the repository root:
#   python tools/train.py configs/ifr/demo/htc_mbv2_fpn_shapes_baseline.py
_base_ = './mask-rcnn_mbv2_fpn_shapes_baseline.py'

_loss_mask = dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0)
# The demo's RoI geometry, shared by the 3 stages.
_featmap_strides = [8, 16, 32, 64]
model = dict(
    _delete_=True,
    type='HybridTaskCascade',
    # HTC's stock preprocessor: no semantic maps or padded masks to carry.
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone={{_base_.model.backbone}},
    neck={{_base_.model.neck}},
    rpn_head=dict(
        type='RPNHead',
        in_channels=256,
        feat_channels=256,
        anchor_generator=dict(
            type='AnchorGenerator', scales=[4], ratios=[0.5, 1.0, 2.0], strides=_featmap_strides),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0)),
    roi_head=dict(
        type='HybridTaskCascadeRoIHead',
        interleaved=True,
        mask_info_flow=True,
        num_stages=3,
        stage_loss_weights=[1, 0.5, 0.25],
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=256,
            featmap_strides=_featmap_strides),
        # Each stage regresses from the previous one's boxes, hence the
        # tighter target stds stage by stage (mmdet's).
        bbox_head=[
            dict(
                type='Shared2FCBBoxHead',
                in_channels=256,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes={{_base_.num_classes}},
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.], target_stds=stds),
                reg_class_agnostic=True,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))
            for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067])
        ],
        mask_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
            out_channels=256,
            featmap_strides=_featmap_strides),
        # HTCMaskHead's defaults are the stock tower (4 x 3x3 convs, 256
        # channels). The first stage has no earlier mask feature to add.
        # htc_mbv2_fpn_shapes_ifr.py restates this list with its types swapped.
        mask_head=[
            dict(type='SmallInitHTCMaskHead', with_conv_res=False,
                 num_classes={{_base_.num_classes}}, loss_mask=_loss_mask),
            dict(type='SmallInitHTCMaskHead', num_classes={{_base_.num_classes}},
                 loss_mask=_loss_mask),
            dict(type='SmallInitHTCMaskHead', num_classes={{_base_.num_classes}},
                 loss_mask=_loss_mask),
        ]),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                min_pos_iou=0.3,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=256,
                pos_fraction=0.5,
                neg_pos_ub=-1,
                add_gt_as_proposals=False),
            allowed_border=0,
            pos_weight=-1,
            debug=False),
        # The demo's proposal budget (~5-6 objects per image).
        rpn_proposal=dict(
            nms_pre=1000,
            max_per_img=300,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        # mmdet's rising IoU thresholds; 32 RoIs per image and stage as in the
        # Mask R-CNN demo: every stage runs its mask head on its positives.
        rcnn=[
            dict(
                assigner=dict(
                    type='MaxIoUAssigner',
                    pos_iou_thr=iou,
                    neg_iou_thr=iou,
                    min_pos_iou=iou,
                    ignore_iof_thr=-1),
                sampler=dict(
                    type='RandomSampler',
                    num=32,
                    pos_fraction=0.25,
                    neg_pos_ub=-1,
                    add_gt_as_proposals=True),
                mask_size=28,
                pos_weight=-1,
                debug=False) for iou in (0.5, 0.6, 0.7)
        ]),
    test_cfg=dict(
        rpn=dict(
            nms_pre=1000,
            max_per_img=100,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        # As in the demo, 20 detections for at most 8 objects per image.
        rcnn=dict(
            score_thr=0.001,
            nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=20,
            mask_thr_binary=0.5)))
