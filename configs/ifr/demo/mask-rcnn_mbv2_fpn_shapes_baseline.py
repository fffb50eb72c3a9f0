# Baseline of the CPU demo: Mask R-CNN, ImageNet MobileNetV2 + FPN, mmdet's
# stock FCNMaskHead (4 x 3x3 convs, 256 channels) on the synthetic shapes set.
#
# Sized for a 2-core CPU, so that `make demo` (both models) stays within 20
# minutes. Measured on the project's 2-core Xeon (torch 2.13, default shapes
# set: 200 train / 50 val images, 320x320): ~0.6 s/iter (2 images) when the
# machine is otherwise idle; bbox / segm mAP were 35.4 / 26.3 after 300
# iterations and 41.6 / 33.5 after 500. The IFR variant of the demo only
# swaps ``model.roi_head.mask_head``; everything else (and thus every cost
# saving below) is shared, so the comparison stays fair.
#
# Prerequisites (from the repository root):
#   python tools/dataset_converters/make_shapes_dataset.py      # data/shapes
#   python tools/model_converters/mobilenetv2_to_mmdet.py       # backbone
#   python tools/train.py configs/ifr/demo/mask-rcnn_mbv2_fpn_shapes_baseline.py
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

# The baseline is mmdet's Mask R-CNN; mmifr only supplies its mask head's
# predictor init (SmallInitFCNMaskHead below), which the IFR head shares.
custom_imports = dict(imports=['mmifr'], allow_failed_imports=False)

# ---------------------------------------------------------------- data
data_root = 'data/shapes/'
# Must match the generator (tools/lib/shapes_data.py: CLASSES, PALETTE) and
# make_shapes_dataset.py's --size.
classes = ('ellipse', 'triangle', 'star', 'ring')
palette = [(220, 20, 60), (0, 130, 255), (255, 190, 0), (60, 200, 60)]
metainfo = dict(classes=classes, palette=palette)
img_scale = (320, 320)

# Training length. One iteration is ``batch_size`` images.
max_iters = 450
batch_size = 2

backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    # A no-op at the generator's size; keeps the config usable for other
    # --size values.
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
# num_workers=0: decoding a 320x320 JPEG is negligible next to a CPU training
# step, and worker processes would compete for the same 2 cores.
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type='CocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_val.json',
    metric=['bbox', 'segm'],
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator

# ---------------------------------------------------------------- model
num_classes = len(classes)
model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        # layer3 / layer5 / layer7: strides 8 / 16 / 32, 32 / 96 / 320 ch.
        # The stride-4 level is dropped on purpose: at 256 FPN channels its
        # 3x3 FPN and RPN convs would cost more than the rest of the network.
        out_indices=(2, 4, 6),
        # Stem to layer4 (stride 16) frozen: no backward pass through the
        # high-resolution depthwise layers, which are slow on CPUs; BN
        # statistics frozen as usual for 2-image batches.
        frozen_stages=4,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='work_dirs/pretrained/mobilenetv2_mmdet.pth')),
    neck=dict(in_channels=[32, 96, 320], out_channels=256, num_outs=4),
    rpn_head=dict(
        # Strides follow the FPN levels (P3-P6). Scale 4 gives 32..256 px
        # anchors, covering the ~9..155 px objects of a 320x320 image.
        anchor_generator=dict(scales=[4], strides=[8, 16, 32, 64])),
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_strides=[8, 16, 32, 64]),
        bbox_head=dict(num_classes=num_classes),
        mask_roi_extractor=dict(featmap_strides=[8, 16, 32, 64]),
        # The baseline under study: mmdet's stock 4-conv, 256-channel FCN
        # mask head, its predictor initialised N(0, 0.001) as the IFR head's
        # (mmifr.models.roi_heads.MaskPredictorInitMixin), so that the pair
        # differs in the tower only.
        mask_head=dict(type='SmallInitFCNMaskHead', num_convs=4, conv_out_channels=256,
                       num_classes=num_classes)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        # 32 RoIs/image, at most 8 positive: the mask head runs its four
        # 256-ch convs on every positive RoI, the largest training cost on a
        # CPU (images hold ~5-6 objects, so 8 is still about 1.5 per object).
        rcnn=dict(sampler=dict(num=32))),
    test_cfg=dict(
        rpn=dict(nms_pre=1000, max_per_img=100),
        # At most 8 objects per image: 20 detections bound the test-time
        # mask head cost without costing recall.
        rcnn=dict(max_per_img=20)))

# The P3-P7 pyramid of the one-stage demos built on FCOS (FCOS, CondInst,
# BoxInst, MEInst, BlendMask, SipMask): the backbone's three levels at 128
# channels and two extra levels from P5's output, as mmdet's FCOS configs
# build theirs. (The RetinaNet / FreeAnchor / RepPoints demos keep mmdet's
# RetinaNet neck: extra levels from the backbone's C5.)
dense_neck = dict(
    type='FPN',
    in_channels=[32, 96, 320],
    out_channels=128,
    start_level=0,
    add_extra_convs='on_output',
    num_outs=5,
    relu_before_extra_convs=True)

# ---------------------------------------------------------------- schedule
train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# AdamW converges much faster than the SGD 1x recipe in a few hundred
# iterations and does not need a per-batch-size learning-rate search.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.05),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=25),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[int(max_iters * 0.8)],
        gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=batch_size)

# ---------------------------------------------------------------- runtime
default_hooks = dict(
    # Log (with ETA) every 10 iterations, and every 10 images during eval.
    logger=dict(type='LoggerHook', interval=10),
    # Keep only the final weights.
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1,
        save_last=True))
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
# mmdet's MobileNetV2 always builds its final 1x1 conv (conv2), which the
# three FPN inputs above never use; DDP (tools/dist_train.sh) must be told.
find_unused_parameters = True
randomness = dict(seed=0)
