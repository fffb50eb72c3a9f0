# The demo baseline on real photos: the fruits_nuts set (dates, figs and
# hazelnuts on cloth, 800x600; 14 train / 4 val images), read from a path and
# never copied into the repository. Override the location with
#   --cfg-options train_dataloader.dataset.data_root=... (and val/test, and
#   val_evaluator.ann_file / test_evaluator.ann_file)
# or edit `data_root` below.
_base_ = './mask-rcnn_mbv2_fpn_shapes_baseline.py'

data_root = '../shared/data/fruits_nuts/'
metainfo = dict(
    classes=('date', 'fig', 'hazelnut'), palette=[(220, 20, 60), (0, 130, 255), (255, 190, 0)])
# Objects are 40-120 px at 800x600; 640x480 keeps them above the smallest
# anchors (32 px) at a CPU-friendly size.
img_scale = (640, 480)
max_iters = 300

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations_train.json',
        data_prefix=dict(img='images/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations_val.json',
        data_prefix=dict(img='images/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations_val.json')
test_evaluator = val_evaluator

model = dict(
    roi_head=dict(bbox_head=dict(num_classes=3), mask_head=dict(num_classes=3)),
    # Up to ~25 objects per photo.
    test_cfg=dict(rcnn=dict(max_per_img=50)))

train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
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
default_hooks = dict(checkpoint=dict(interval=max_iters))
