# SipMask (video) on the CPU demo's video data: the MaskTrack R-CNN video demo
# (data, key + reference frame, ImageNet MobileNetV2, AdamW, schedule,
# YouTubeVISMetric) with SipMaskVIS in place of MaskTrack R-CNN: FPN P3-P7 and
# SipMask's head at 128 channels (as the MEInst / BlendMask demos), its
# tracking branch and mmdet's MaskTrackRCNNTracker.
_base_ = './masktrack-rcnn_mbv2_fpn_shapes-video_baseline.py'

model = dict(
    _delete_=True,
    type='SipMaskVIS',
    data_preprocessor={{_base_.model.data_preprocessor}},
    detector=dict(
        type='SipMask',
        backbone={{_base_.model.detector.backbone}},
        neck={{_base_.dense_neck}},
        bbox_head=dict(
            type='SipMaskHead',
            num_classes={{_base_.num_classes}},
            in_channels=128,
            stacked_convs=4,
            feat_channels=128,
            strides=[8, 16, 32, 64, 128],
            norm_on_bbox=True,
            centerness_on_reg=True,
            center_sampling=True,
            conv_bias=True,
            num_bases=32,
            basis_channels=256,
            loss_cls=dict(
                type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
            loss_bbox=dict(type='GIoULoss', loss_weight=1.0),
            loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
        test_cfg=dict(
            nms_pre=1000,
            min_bbox_size=0,
            score_thr=0.05,
            nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=20,
            mask_thr=0.5)),
    track_head=dict(type='SipMaskTrackHead', in_channels=128, feat_channels=128, stacked_convs=3,
                    num_levels=3, embed_channels=256),
    tracker={{_base_.model.tracker}})
