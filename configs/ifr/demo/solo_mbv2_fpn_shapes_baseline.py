# SOLO on the CPU demo: the demo's data, backbone, schedule and optimiser
# (mask-rcnn_mbv2_fpn_shapes_baseline.py) with mmdet's SOLO
# (solo_r50_fpn_3x_coco.py -> solo_r50_fpn_1x_coco.py) in place of Mask R-CNN:
# FPN P2-P6 and SOLOHead with its stock 7-conv mask and category towers, both
# at 128 channels (the demo budget, as the MEInst demo; 256 in mmdet's).
# The IFR side (solo_mbv2_fpn_shapes_ifr.py) replaces exactly these two towers.
#
# Prerequisites and training (from the repository root):
#   python tools/dataset_converters/make_shapes_dataset.py      # data/shapes
#   python tools/model_converters/mobilenetv2_to_mmdet.py       # backbone
#   python tools/train.py configs/ifr/demo/solo_mbv2_fpn_shapes_baseline.py
_base_ = './mask-rcnn_mbv2_fpn_shapes_baseline.py'

model = dict(
    _delete_=True,
    type='SOLO',
    data_preprocessor={{_base_.model.data_preprocessor}},
    # The demo's backbone plus its stride-4 output (layer2, 24 ch): mmdet's
    # SOLOHead hard-codes a stride-4 first level (its targets place grid
    # cells on 4x the first mask map), so P3-P7 from the demo's 3 outputs
    # would put every target centre on the wrong cell. With P2 the levels
    # are SOLO's stock ones. {{_base_.model.backbone}} cannot be partially
    # overridden in the file that uses it, hence the copy.
    backbone=dict(
        type='MobileNetV2',
        out_indices=(1, 2, 4, 6),
        frozen_stages=4,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='work_dirs/pretrained/mobilenetv2_mmdet.pth')),
    neck=dict(
        type='FPN',
        in_channels=[24, 32, 96, 320],
        out_channels=128,
        start_level=0,
        num_outs=5),
    mask_head=dict(
        type='SOLOHead',
        num_classes={{_base_.num_classes}},
        in_channels=128,
        stacked_convs=7,
        feat_channels=128,
        # Not free: the strides of the levels SOLOHead makes of P2-P6 (P2
        # halved, P6 resized to P5), the stock ones.
        strides=[8, 8, 16, 32, 32],
        # mmdet's ranges / 3: objects here are 10-225 px (sqrt of box area;
        # COCO's at 800-1333 px span ~3x more), so each level holds 170-580 of
        # the 1113 training objects; the stock ranges would leave the top two
        # levels nearly empty.
        scale_ranges=((1, 32), (16, 64), (32, 128), (64, 256), (128, 512)),
        pos_scale=0.2,
        # The stock grids: with the ranges / 3 on a 320 px image, an object's
        # centre region (0.2 x its size) spans about as many cells (1-3) as
        # in mmdet's COCO setting, so positives per object stay SOLO's.
        num_grids=[40, 36, 24, 16, 12],
        cls_down_index=0,
        loss_mask=dict(type='DiceLoss', use_sigmoid=True, loss_weight=3.0),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)),
    test_cfg=dict(
        nms_pre=500,
        score_thr=0.1,
        mask_thr=0.5,
        filter_thr=0.05,
        kernel='gaussian',
        sigma=2.0,
        # At most 8 objects per image, as in the other demos.
        max_per_img=20))

# SOLO predicts no boxes (its result boxes are zeros): mask AP only.
val_evaluator = dict(metric='segm')
test_evaluator = val_evaluator
