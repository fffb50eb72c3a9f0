# FCOS (mmdet's fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou,
# the row of the paper's table) on the CPU demo: the demo's data, ImageNet
# MobileNetV2 (with its own pixel normalisation, not the caffe ResNet's),
# schedule and optimiser, with FPN P3-P7 and the FCOS head at 128 channels
# (the MEInst demo's detector without its mask branch). Box only.
_base_ = './mask-rcnn_mbv2_fpn_shapes_baseline.py'

model = dict(
    _delete_=True,
    type='FCOS',
    data_preprocessor={{_base_.model.data_preprocessor}},
    backbone={{_base_.model.backbone}},
    neck={{_base_.dense_neck}},
    bbox_head=dict(
        type='FCOSHead',
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
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.6),
        max_per_img=20))

val_evaluator = dict(metric='bbox')
test_evaluator = val_evaluator
