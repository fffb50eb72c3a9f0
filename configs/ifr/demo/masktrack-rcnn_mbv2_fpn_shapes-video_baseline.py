# MaskTrack R-CNN on the CPU demo's video data (built-in shapes clips, YouTube-
# VIS format): the demo's Mask R-CNN (ImageNet MobileNetV2 + FPN, the stock
# mask head with the IFR heads' predictor init, AdamW, 450 iterations) as
# mmdet's MaskTrackRCNN detector, with mmdet's track head and tracker.
# The detector starts from the ImageNet backbone, not from a trained Mask
# R-CNN (the official recipe starts from a COCO one). Scored by mmdet's
# YouTubeVISMetric (AP, AP50, AP75, AR1, AR10) on the val clips.
#
# Prerequisite, besides the demo's backbone:
#   python tools/dataset_converters/make_shapes_video_dataset.py --out data/shapes_video
_base_ = './mask-rcnn_mbv2_fpn_shapes_baseline.py'

data_root = 'data/shapes_video/'
img_scale = (192, 192)

detector = _base_.model
detector.pop('data_preprocessor')
del _base_.model
model = dict(
    type='MaskTrackRCNN',
    data_preprocessor=dict(
        type='TrackDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_mask=True,
        pad_size_divisor=32),
    detector=detector,
    track_head=dict(
        type='RoITrackHead',
        roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[8, 16, 32, 64]),
        embed_head=dict(
            type='RoIEmbedHead', num_fcs=2, roi_feat_size=7, in_channels=256,
            fc_out_channels=1024),
        train_cfg=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.5,
                min_pos_iou=0.5,
                match_low_quality=True,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler', num=32, pos_fraction=0.25, neg_pos_ub=-1,
                add_gt_as_proposals=True),
            pos_weight=-1,
            debug=False)),
    tracker=dict(
        type='MaskTrackRCNNTracker',
        match_weights=dict(det_score=1.0, iou=2.0, det_label=10.0),
        num_frames_retain=20))

# ---------------------------------------------------------------- data
train_pipeline = [
    # A key frame and one reference frame of the same clip (2 images an
    # iteration, as the image demo's batch of 2).
    dict(type='UniformRefFrameSample', num_ref_imgs=1, frame_range=100, filter_key_img=True),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadTrackAnnotations', with_mask=True),
            dict(type='Resize', scale=img_scale, keep_ratio=True),
            dict(type='RandomFlip', prob=0.5),
        ]),
    dict(type='PackTrackInputs')
]
test_pipeline = [
    dict(
        type='TransformBroadcaster',
        transforms=[
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=img_scale, keep_ratio=True),
            dict(type='LoadTrackAnnotations', with_mask=True),
        ]),
    dict(type='PackTrackInputs')
]
dataset = dict(
    type='YouTubeVISDataset',
    dataset_version='2019',
    data_root=data_root,
    metainfo={{_base_.metainfo}})
train_dataloader = dict(
    _delete_=True,
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='TrackImgSampler'),
    batch_sampler=dict(type='TrackAspectRatioBatchSampler'),
    dataset=dict(
        ann_file='annotations/youtube_vis_train.json',
        data_prefix=dict(img_path='train/JPEGImages'),
        pipeline=train_pipeline,
        **dataset))
val_dataloader = dict(
    _delete_=True,
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        ann_file='annotations/youtube_vis_val.json',
        data_prefix=dict(img_path='val/JPEGImages'),
        test_mode=True,
        pipeline=test_pipeline,
        **dataset))
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True,
    # mmdet's YouTubeVISMetric, made to run with NumPy >= 1.24 (mmifr.evaluation).
    type='NumpyCompatYouTubeVISMetric',
    metric='youtube_vis_ap',
    # The columns of the paper's Table 4 (mmdet reports the AP ones only by default).
    metric_items=['mAP', 'mAP_50', 'mAP_75', 'AR@1', 'AR@10'],
    outfile_prefix='./work_dirs/youtube_vis_results',
    format_only=False)
test_evaluator = val_evaluator

default_hooks = dict(visualization=dict(type='TrackVisualizationHook', draw=False))
visualizer = dict(
    _delete_=True,
    type='TrackLocalVisualizer',
    vis_backends=[dict(type='LocalVisBackend')],
    name='visualizer')
