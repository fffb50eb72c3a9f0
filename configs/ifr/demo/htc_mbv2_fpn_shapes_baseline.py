# HTC (mmdet's htc/htc-without-semantic_r50_fpn_1x_coco.py) on the CPU demo:
# the Cascade Mask R-CNN demo (cascade-mask-rcnn_mbv2_fpn_shapes_baseline.py:
# the Mask R-CNN demo's data, backbone, schedule and RoI set-up, three stages
# at IoU 0.5 / 0.6 / 0.7) with HTC's interleaved box/mask stages and mask
# information flow, and where mmdet's HTC differs from its Cascade Mask R-CNN:
# mask padding, RPN loss, anchor border, stage assigners and test score
# threshold.
#
# Without HTC's semantic branch: the shapes set has no semantic (stuff) maps
# to train it on. The mask heads are mmdet's HTCMaskHead with the IFR head's
# predictor init (SmallInitHTCMaskHead), so that the pair
# (htc_mbv2_fpn_shapes_ifr.py) differs in the mask towers only.
#
# Prerequisites: the demo's (data/shapes and the MobileNetV2 weights, see
# mask-rcnn_mbv2_fpn_shapes_baseline.py). Train from the repository root:
#   python tools/train.py configs/ifr/demo/htc_mbv2_fpn_shapes_baseline.py
_base_ = './cascade-mask-rcnn_mbv2_fpn_shapes_baseline.py'

_loss_mask = dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0)
model = dict(
    type='HybridTaskCascade',
    # As mmdet's HTC: no padded masks to carry.
    data_preprocessor=dict(pad_mask=False),
    rpn_head=dict(loss_bbox=dict(type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0)),
    roi_head=dict(
        type='HybridTaskCascadeRoIHead',
        interleaved=True,
        mask_info_flow=True,
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
        rpn=dict(allowed_border=0),
        # The cascade demo's stages with mmdet's HTC assigners, which keep
        # the low-quality matches.
        rcnn=[
            dict(
                assigner=dict(
                    type='MaxIoUAssigner',
                    pos_iou_thr=iou,
                    neg_iou_thr=iou,
                    min_pos_iou=iou,
                    ignore_iof_thr=-1),
                sampler=dict(
                    type='RandomSampler', num=32, pos_fraction=0.25, neg_pos_ub=-1,
                    add_gt_as_proposals=True),
                mask_size=28,
                pos_weight=-1,
                debug=False) for iou in (0.5, 0.6, 0.7)
        ]),
    test_cfg=dict(rcnn=dict(score_thr=0.001)))
