# CondInst (mmdet's condinst_r50_fpn_ms-poly-90k_coco_instance.py) on the CPU
# demo: the FCOS demo's detector with CondInst's controller (169 dynamic
# parameters per location) and mask branch (P3-P5 at 128 channels, stride 8,
# masks at stride 4), as mmdet builds CondInst on FCOS. Scored on masks.
_base_ = './fcos_mbv2_fpn_shapes_baseline.py'

model = dict(
    type='CondInst',
    bbox_head=dict(type='CondInstBboxHead', num_params=169),
    mask_head=dict(
        type='CondInstMaskHead',
        num_layers=3,
        feat_channels=8,
        size_of_interest=8,
        mask_out_stride=4,
        max_masks_to_train=300,
        mask_feature_head=dict(
            in_channels=128,
            feat_channels=128,
            start_level=0,
            end_level=2,
            out_channels=8,
            mask_stride=8,
            num_stacked_convs=4,
            norm_cfg=dict(type='BN', requires_grad=True)),
        loss_mask=dict(
            type='DiceLoss', use_sigmoid=True, activate=True, eps=5e-6, loss_weight=1.0)),
    test_cfg=dict(mask_thr=0.5))

val_evaluator = dict(metric=['bbox', 'segm'])
test_evaluator = val_evaluator
