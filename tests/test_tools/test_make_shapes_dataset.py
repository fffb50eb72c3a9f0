"""``tools/dataset_converters/make_shapes_dataset.py`` and the generator it
writes with (``tools.lib.shapes_data``)."""
import json
import os.path as osp

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest
from tool_runs import load_tool

from tools.lib import shapes_data as shapes

tool = load_tool('tools/dataset_converters/make_shapes_dataset.py')
SIZE = (96, 80)  # (W, H): non-square, to catch x/y mix-ups


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    """Two splits of 4 images each, written once through the CLI."""
    root = str(tmp_path_factory.mktemp('shapes') / 'seed0')
    tool.main(['--out', root, '--num-train', '4', '--num-val', '4', '--size', '96x80',
               '--seed', '0', '--ext', 'png'])
    return root


def _load(root, split='train'):
    with open(osp.join(root, 'annotations', f'instances_{split}.json')) as f:
        return json.load(f)


def _pixels(root, split='train'):
    coco = _load(root, split)
    return [cv2.imread(osp.join(root, split, im['file_name']), cv2.IMREAD_UNCHANGED)
            for im in coco['images']]


def test_layout_and_pycocotools(dataset):
    from pycocotools.coco import COCO
    for split in ('train', 'val'):
        coco = COCO(osp.join(dataset, 'annotations', f'instances_{split}.json'))
        assert len(coco.getImgIds()) == 4
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(shapes.CLASSES)
        assert len(coco.getAnnIds()) > 0
        for img in coco.loadImgs(coco.getImgIds()):
            arr = cv2.imread(osp.join(dataset, split, img['file_name']))
            assert arr.shape == (img['height'], img['width'], 3) == (80, 96, 3)


def test_annotations_consistent(dataset):
    """area, bbox and segmentation agree; every mask is non-empty, iscrowd 0."""
    coco = _load(dataset)
    ids = [a['id'] for a in coco['annotations']]
    assert len(set(ids)) == len(ids)
    for ann in coco['annotations']:
        img = coco['images'][ann['image_id'] - 1]
        m = mask_utils.decode(shapes.segmentation_to_rle(ann['segmentation'], img['height'],
                                                         img['width']))
        ys, xs = np.nonzero(m)
        assert ann['iscrowd'] == 0 and 1 <= ann['category_id'] <= len(shapes.CLASSES)
        assert ann['area'] == m.sum() > 0
        # COCO xywh with inclusive pixel extents.
        assert ann['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                               ys.max() - ys.min() + 1]


def test_deterministic_by_seed(dataset, tmp_path):
    again = str(tmp_path / 'again')
    other = str(tmp_path / 'other')
    kw = dict(num_train=4, num_val=1, size=SIZE, ext='png', verbose=False)
    shapes.make_dataset(again, seed=0, **kw)
    shapes.make_dataset(other, seed=1, **kw)
    assert _load(again) == _load(dataset)
    assert all(np.array_equal(a, b) for a, b in zip(_pixels(again), _pixels(dataset)))
    assert _load(other)['annotations'] != _load(dataset)['annotations']
    assert not any(np.array_equal(a, b) for a, b in zip(_pixels(other), _pixels(dataset)))
    # Per-image streams: the val split is a prefix of the seed-0 val split.
    assert np.array_equal(_pixels(again, 'val')[0], _pixels(dataset, 'val')[0])


def test_visible_masks_and_occlusion():
    """Masks are the visible parts: disjoint, equal to painting the full
    shapes in order, and never (almost) fully hidden."""
    occluded = 0
    for idx in range(6):
        rng = np.random.default_rng([7, 0, idx])
        image, insts = shapes.generate_image(rng, 80, 96, num_objects=(4, 6),
                                             min_visible=0.35, min_area=30)
        assert image.shape == (80, 96, 3) and image.dtype == np.uint8
        ref = shapes.visible_masks([i['full_mask'] for i in insts])
        for inst, vis_ref in zip(insts, ref):
            assert np.array_equal(inst['mask'], vis_ref)
            vis = int(inst['mask'].sum())
            assert inst['full_area'] == inst['full_mask'].sum()
            assert vis >= max(30, 0.35 * inst['full_area'])
            occluded += vis < inst['full_area']
        if insts:
            assert (np.stack([i['mask'] for i in insts]).sum(0) <= 1).all()
    assert occluded > 0, 'no occlusion generated at all'


def test_later_shapes_occlude_earlier():
    """A ring painted over a disk hides the disk except through its hole."""
    h = w = 64
    ring, _ = shapes.unit_shape(np.random.default_rng(0), shapes.CLASSES.index('ring'))
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    disk = shapes.render_shape([np.stack([np.cos(t), np.sin(t)], 1)], (32, 32), 20, h, w)
    ring = shapes.render_shape(ring, (32, 32), 22, h, w)
    assert disk[32, 32] and not ring[32, 32], 'ring hole must be empty'
    vis_disk, vis_ring = shapes.visible_masks([disk, ring])
    assert np.array_equal(vis_ring, ring)
    assert np.array_equal(vis_disk, disk & ~ring)
    assert vis_disk[32, 32] and vis_disk.sum() < disk.sum()
    # and the other way round: the ring is the one hidden
    vis_ring2, vis_disk2 = shapes.visible_masks([ring, disk])
    assert np.array_equal(vis_disk2, disk) and np.array_equal(vis_ring2, ring & ~disk)


@pytest.mark.parametrize('fmt', ['rle', 'polygon'])
def test_encode_mask_roundtrip(fmt):
    m = np.zeros((40, 50), bool)
    m[5:30, 10:40] = True
    m[12:20, 20:30] = False  # a hole: polygon mode must fall back to RLE
    segm = shapes.encode_mask(m, fmt)
    assert isinstance(segm, dict)
    assert np.array_equal(mask_utils.decode(shapes.segmentation_to_rle(segm, 40, 50)), m)
    solid = np.zeros((40, 50), bool)
    solid[5:30, 10:40] = True
    segm = shapes.encode_mask(solid, fmt)
    assert isinstance(segm, list if fmt == 'polygon' else dict)
    assert mask_utils.decode(shapes.segmentation_to_rle(segm, 40, 50)).sum() > 0


def test_mmdet_coco_dataset(dataset):
    from mmdet.datasets import CocoDataset
    from mmdet.utils import register_all_modules
    register_all_modules()
    ds = CocoDataset(
        data_root=dataset,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        metainfo=dict(classes=shapes.CLASSES),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
            dict(type='PackDetInputs')
        ])
    assert ds.metainfo['classes'] == shapes.CLASSES and len(ds) > 0
    sample = ds[0]
    gt = sample['data_samples'].gt_instances
    coco = _load(dataset)
    n = sum(a['image_id'] == ds.get_data_info(0)['img_id'] for a in coco['annotations'])
    assert len(gt) == n and gt.masks.masks.shape[1:] == (80, 96)
    assert not sample['data_samples'].ignored_instances.bboxes.numel()


def test_visualize(dataset, tmp_path):
    path = shapes.visualize(dataset, 'train', num=2, save_path=str(tmp_path / 'vis.png'))
    img = cv2.imread(path)
    assert img is not None and img.shape[0] > 2 * 80


def test_parse_size():
    assert shapes.parse_size('320') == (320, 320)
    assert shapes.parse_size('320x240') == (320, 240)
