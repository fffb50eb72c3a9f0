# MEInst on the CPU demo: the demo's data, backbone, schedule and optimiser
# (mask-rcnn_mbv2_fpn_shapes_baseline.py) with MEInst in place of Mask R-CNN:
# FPN P3-P7 (strides 8-128) and MEInst's FCOS head, its towers at 128
# channels (the demo budget; 256 in meinst_r50_1x.py).
#
# Prerequisite, besides the demo's (the PCA of the shapes training masks):
#   python tools/analysis_tools/fit_meinst_pca.py data/shapes/annotations/instances_train.json \
#       --out data/shapes/meinst_pca_60.pth
_base_ = './mask-rcnn_mbv2_fpn_shapes_baseline.py'

model = dict(
    _delete_=True,
    type='MEInst',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_mask=True,
        pad_size_divisor=32),
    backbone={{_base_.model.backbone}},
    neck={{_base_.dense_neck}},
    bbox_head=dict(
        type='MEInstBboxHead',
        num_params=60,
        num_classes={{_base_.num_classes}},
        in_channels=128,
        stacked_convs=4,
        feat_channels=128,
        strides=[8, 16, 32, 64, 128],
        norm_on_bbox=True,
        centerness_on_reg=True,
        center_sampling=True,
        conv_bias=True,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=1.0),
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    mask_head=dict(
        type='MEInstMaskHead',
        mask_coder=dict(
            type='PCAMaskCoder', dim=60, mask_size=28, pca_file='data/shapes/meinst_pca_60.pth'),
        loss_mask=dict(type='MSELoss', loss_weight=1.0)),
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.6),
        max_per_img=20,
        mask_thr=0.5))
