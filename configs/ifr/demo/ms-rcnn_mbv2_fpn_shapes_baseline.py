# Mask Scoring R-CNN (mmdet's ms-rcnn_r50_fpn_1x_coco.py) on the CPU demo: the
# demo Mask R-CNN with MaskIoUHead scoring each mask, as mmdet derives its
# MS R-CNN config from its Mask R-CNN one.
_base_ = './mask-rcnn_mbv2_fpn_shapes_baseline.py'

model = dict(
    type='MaskScoringRCNN',
    roi_head=dict(
        type='MaskScoringRoIHead',
        mask_iou_head=dict(
            type='MaskIoUHead',
            num_convs=4,
            num_fcs=2,
            roi_feat_size=14,
            in_channels=256,
            conv_out_channels=256,
            fc_out_channels=1024,
            num_classes={{_base_.num_classes}})),
    train_cfg=dict(rcnn=dict(mask_thr_binary=0.5)))
