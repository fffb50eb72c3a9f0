# Cascade Mask R-CNN (mmdet's cascade-mask-rcnn_r50_fpn_1x_coco.py) on the CPU
# demo: the demo Mask R-CNN (data, ImageNet MobileNetV2 + FPN, RPN, RoI
# sizes, sampler, schedule) with a three-stage cascade of box heads at IoU
# 0.5 / 0.6 / 0.7 and a mask head per stage, mmdet's stock 4-conv FCN head
# with the IFR head's predictor init, as the Mask R-CNN demo's.
_base_ = './mask-rcnn_mbv2_fpn_shapes_baseline.py'

_stage_target_stds = ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067])
_stage_ious = (0.5, 0.6, 0.7)
model = dict(
    type='CascadeRCNN',
    roi_head=dict(
        type='CascadeRoIHead',
        num_stages=3,
        stage_loss_weights=[1, 0.5, 0.25],
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
            for stds in _stage_target_stds
        ]),
    train_cfg=dict(rcnn=[
        dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=iou,
                neg_iou_thr=iou,
                min_pos_iou=iou,
                match_low_quality=False,
                ignore_iof_thr=-1),
            # The demo's 32 RoIs per image (512 on COCO), at every stage.
            sampler=dict(
                type='RandomSampler', num=32, pos_fraction=0.25, neg_pos_ub=-1,
                add_gt_as_proposals=True),
            mask_size=28,
            pos_weight=-1,
            debug=False) for iou in _stage_ious
    ]))
