"""Tests of ``NumpyCompatYouTubeVISMetric`` (mmdet's YouTube-VIS metric)."""
import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch
from mmengine.structures import InstanceData

from mmdet.registry import METRICS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmifr.evaluation import numpy_float_alias


def _frame(video_id, frame_id, length, masks, track_ids, scores):
    """One frame: its ground truth in the dataset's ``instances`` form and
    a prediction equal to it."""
    instances, boxes = [], []
    for mask, track_id in zip(masks, track_ids):
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle['counts'] = rle['counts'].decode()
        x, y, w, h = mask_utils.toBbox(rle)
        boxes.append([x, y, x + w, y + h])
        instances.append(dict(bbox=boxes[-1], bbox_label=0, instance_id=track_id, mask=rle))
    sample = DetDataSample()
    sample.set_metainfo(dict(video_id=video_id, frame_id=frame_id, img_id=video_id * 100 + frame_id,
                             ori_shape=masks.shape[-2:], ori_video_length=length,
                             instances=instances))
    sample.pred_track_instances = InstanceData(
        labels=torch.zeros(len(masks), dtype=torch.long), scores=torch.tensor(scores),
        instances_id=torch.tensor(track_ids), masks=torch.from_numpy(masks.astype(bool)),
        bboxes=torch.tensor(boxes, dtype=torch.float32))
    return sample


def test_alias_is_there_inside_and_gone_outside():
    assert 'float' not in np.__dict__
    with numpy_float_alias():
        assert np.float is float
    assert 'float' not in np.__dict__


@pytest.mark.parametrize('perfect', [True, False])
def test_perfect_tracks_score_ap_1_and_missing_ones_less(perfect, tmp_path):
    register_all_modules()
    import mmifr  # noqa: F401
    metric = METRICS.build(dict(type='NumpyCompatYouTubeVISMetric',
                                outfile_prefix=str(tmp_path / 'vis')))
    metric.dataset_meta = dict(classes=('shape', ))
    masks = np.zeros((2, 24, 24), dtype=np.uint8)
    masks[0, 2:10, 2:10] = 1
    masks[1, 12:20, 12:22] = 1
    frames = []
    for t in range(3):
        sample = _frame(1, t, 3, np.roll(masks, t, axis=2), [1, 2], [0.9, 0.8])
        if not perfect:  # the second track is predicted on the wrong place
            sample.pred_track_instances.masks[1] = torch.roll(
                sample.pred_track_instances.masks[1], 8, dims=0)
        frames.append(sample)
    metric.process({}, [dict(video_data_samples=frames)])
    results = metric.evaluate(size=1)
    ap = results['youtube_vis/segm_mAP']
    if perfect:
        assert ap == pytest.approx(1.0)
    else:
        assert 0.2 < ap < 0.9
