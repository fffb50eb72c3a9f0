# SipMask R-50 1x for video instance segmentation (paper Table 4: 31.6 mask AP
# on YouTube-VIS 2019): mmdet's MaskTrack R-CNN recipe (data, 12 epochs of a
# key + reference frame, SGD, YouTubeVISMetric) with the model swapped for
# SipMaskVIS: the image SipMask (sipmask_r50_1x.py's head on an FPN P3-P7), its
# tracking branch (SipMaskTrackHead) and mmdet's MaskTrackRCNNTracker with
# MaskTrack R-CNN's match weights, which are SipMask's. The detector starts
# from the ImageNet R-50 (mmdet has no COCO SipMask to start from).
_base_ = 'mmdet::masktrack_rcnn/masktrack-rcnn_mask-rcnn_r50_fpn_8xb1-12e_youtubevis2019.py'

custom_imports = dict(imports=['mmifr'], allow_failed_imports=False)
model = dict(
    _delete_=True,
    type='SipMaskVIS',
    data_preprocessor={{_base_.model.data_preprocessor}},
    detector=dict(
        type='SipMask',
        backbone=dict(
            type='ResNet',
            depth=50,
            num_stages=4,
            out_indices=(0, 1, 2, 3),
            frozen_stages=1,
            norm_cfg=dict(type='BN', requires_grad=True),
            norm_eval=True,
            style='pytorch',
            init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
        neck=dict(
            type='FPN',
            in_channels=[256, 512, 1024, 2048],
            out_channels=256,
            start_level=1,
            add_extra_convs='on_output',
            num_outs=5,
            relu_before_extra_convs=True),
        bbox_head=dict(
            type='SipMaskHead',
            num_classes=40,
            in_channels=256,
            stacked_convs=4,
            feat_channels=256,
            strides=[8, 16, 32, 64, 128],
            norm_on_bbox=True,
            centerness_on_reg=True,
            center_sampling=True,
            conv_bias=True,
            num_bases=32,
            num_cells=2,
            num_basis_levels=3,
            basis_channels=512,
            loss_cls=dict(
                type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
            loss_bbox=dict(type='GIoULoss', loss_weight=1.0),
            loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
        test_cfg=dict(
            nms_pre=1000,
            min_bbox_size=0,
            score_thr=0.05,
            nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=10,
            mask_thr=0.5)),
    track_head=dict(type='SipMaskTrackHead', in_channels=256, feat_channels=256, stacked_convs=3,
                    num_levels=3, embed_channels=512),
    tracker={{_base_.model.tracker}})
