"""Tests of tools/dataset_converters/make_shapes_video_dataset.py."""
import json
import os.path as osp

import numpy as np
import pycocotools.mask as mask_utils
import pytest
from tool_runs import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


video = load_tool('tools/dataset_converters/make_shapes_video_dataset.py')
SIZE, FRAMES = (112, 96), 8  # (W, H): non-square, to catch x/y mix-ups


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('shapes_video'))
    video.main(['--out', root, '--num-train', '12', '--num-val', '3', '--frames', str(FRAMES),
                '--size', f'{SIZE[0]}x{SIZE[1]}'])
    with open(osp.join(root, 'annotations', 'train.json')) as f:
        return root, json.load(f)


def test_youtube_vis_2019_schema(dataset):
    root, ytvis = dataset
    assert {'videos', 'annotations', 'categories'} <= set(ytvis)
    assert [c['name'] for c in ytvis['categories']] == list(video.CLASSES)
    assert len(ytvis['videos']) == 12
    for v in ytvis['videos']:
        assert (v['width'], v['height'], v['length']) == (*SIZE, FRAMES)
        assert len(v['file_names']) == FRAMES
        assert all(osp.exists(osp.join(root, 'train', 'JPEGImages', n)) for n in v['file_names'])
    for ann in ytvis['annotations']:
        for key in ('segmentations', 'bboxes', 'areas'):
            assert len(ann[key]) == FRAMES, key
        # null in the three lists together
        nulls = [[x is None for x in ann[k]] for k in ('segmentations', 'bboxes', 'areas')]
        assert nulls[0] == nulls[1] == nulls[2]
        assert not all(nulls[0])


def test_rles_decode_to_their_areas_and_boxes(dataset):
    _, ytvis = dataset
    for ann in ytvis['annotations']:
        for segm, box, area in zip(ann['segmentations'], ann['bboxes'], ann['areas']):
            if segm is None:
                continue
            mask = mask_utils.decode(segm)
            assert mask.shape == (SIZE[1], SIZE[0])
            assert mask.sum() == area == mask_utils.area(segm) >= 20
            ys, xs = np.nonzero(mask)
            assert box == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


def test_masks_of_a_frame_are_disjoint(dataset):
    _, ytvis = dataset
    for v in ytvis['videos']:
        anns = [a for a in ytvis['annotations'] if a['video_id'] == v['id']]
        for t in range(FRAMES):
            masks = [mask_utils.decode(a['segmentations'][t]) for a in anns
                     if a['segmentations'][t] is not None]
            if masks:
                assert np.stack(masks).sum(0).max() <= 1


def test_tracks_persist_enter_leave_and_get_occluded():
    rng = np.random.default_rng(0)
    entered = left = occluded = 0
    for _ in range(12):
        frames, tracks = video.generate_video(rng, FRAMES, SIZE[1], SIZE[0])
        assert len(frames) == FRAMES and frames[0].shape == (SIZE[1], SIZE[0], 3)
        for tr in tracks:
            present = [m is not None for m in tr['masks']]
            entered += not present[0] and any(present)
            left += present[0] and not present[-1]
            occluded += any(m is not None and m.sum() < 0.9 * full
                            for m, full in zip(tr['masks'], tr['full_areas']))
            # One track, one object: its visible masks move smoothly
            # (consecutive centres closer than a third of the image).
            centres = [np.argwhere(m).mean(0) for m in tr['masks'] if m is not None]
            steps = [np.abs(b - a).max() for a, b in zip(centres, centres[1:])]
            assert all(s < max(SIZE) / 3 for s in steps)
    assert entered and left and occluded


def test_generation_is_deterministic_and_prefix_stable(tmp_path):
    a = video.generate_split(str(tmp_path / 'a'), 'val', 2, 4, (64, 64), seed=3)
    b = video.generate_split(str(tmp_path / 'b'), 'val', 3, 4, (64, 64), seed=3)
    assert a['annotations'] == [x for x in b['annotations'] if x['video_id'] <= 2]


def test_cocovid_loads_with_mmdets_youtube_vis_dataset(dataset):
    from mmdet.datasets import YouTubeVISDataset
    from mmdet.utils import register_all_modules
    register_all_modules()
    root, ytvis = dataset
    ds = YouTubeVISDataset(
        dataset_version='2019', data_root=root, ann_file='annotations/youtube_vis_train.json',
        data_prefix=dict(img_path='train/JPEGImages'), metainfo=dict(classes=video.CLASSES),
        pipeline=[], test_mode=True)
    assert len(ds) == 12
    info = ds.get_data_info(0)
    assert info['video_length'] == FRAMES and len(info['images']) == FRAMES
    assert osp.exists(info['images'][0]['img_path'])
    # Instance ids are the YouTube-VIS track ids, the same in every frame.
    tracks = {a['id']: a for a in ytvis['annotations'] if a['video_id'] == 1}
    for t, frame in enumerate(info['images']):
        ids = sorted(inst['instance_id'] for inst in frame['instances'])
        assert ids == sorted(i for i, a in tracks.items() if a['segmentations'][t] is not None)
