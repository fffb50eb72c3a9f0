# The demo baseline on real COCO photos: ../shared/data/coco_subset (100
# train2017 images, 80 classes, 69 present) split 80 / 20 by image id.
# Make the split first (writes two annotation files, never the images):
#   python tools/dataset_converters/split_coco_by_image_id.py \
#       ../shared/data/coco_subset/annotations/instances_train2017.json \
#       --out-dir data/coco_subset/annotations
# 80 images of 80 classes train only a weak detector in a CPU schedule; the
# pair is there to see whether the two heads rank the same on real photos.
_base_ = './mask-rcnn_mbv2_fpn_shapes_baseline.py'

# Images stay in the shared folder; the split's annotation files are made
# under data/ (paths relative to the repository root, hence data_root='').
img_dir = '../shared/data/coco_subset/train2017/'
ann_dir = 'data/coco_subset/annotations/'
# 640x480 photos at 0.8x: ~2x the pixels of a shapes image.
img_scale = (512, 384)

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
# metainfo=None: CocoDataset's own 80 classes.
train_dataloader = dict(
    dataset=dict(
        data_root='',
        metainfo=None,
        ann_file=ann_dir + 'instances_train.json',
        data_prefix=dict(img=img_dir),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_root='',
        metainfo=None,
        ann_file=ann_dir + 'instances_val.json',
        data_prefix=dict(img=img_dir),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=ann_dir + 'instances_val.json')
test_evaluator = val_evaluator

model = dict(
    roi_head=dict(bbox_head=dict(num_classes=80), mask_head=dict(num_classes=80)),
    # Up to ~20 annotated objects per photo.
    test_cfg=dict(rcnn=dict(max_per_img=50)))
