"""MaskTrack R-CNN with the IFR mask head (the video demo's model) on tiny clips."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmdet.registry import MODELS
from mmdet.testing import demo_track_inputs
from mmdet.utils import register_all_modules
from mmifr.engine.hooks import find_refiners

REPO_ROOT = osp.join(osp.dirname(__file__), *[osp.pardir] * 3)
CONFIG = osp.join(REPO_ROOT, 'configs', 'ifr', 'demo',
                  'masktrack-rcnn_mbv2_fpn_shapes-video_ifr.py')
SHAPE = (3, 96, 96)


@pytest.fixture(scope='module')
def model():
    register_all_modules()
    import mmifr  # noqa: F401
    cfg = Config.fromfile(CONFIG)
    cfg.model.detector.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def _clip(model, num_frames, frame_id=0, training=False, num_items=(2, )):
    if training:
        data = demo_track_inputs(batch_size=1, num_frames=num_frames, key_frames_inds=[0],
                                 image_shapes=SHAPE, num_items=list(num_items), num_classes=4,
                                 with_mask=True)
    else:
        data = demo_track_inputs(batch_size=1, num_frames=num_frames, image_shapes=SHAPE,
                                 num_classes=4)
        # A static scene: every frame is the first one.
        data['inputs'][0][:] = data['inputs'][0][:1]
        for t, sample in enumerate(data['data_samples'][0]):
            sample.set_metainfo(dict(frame_id=frame_id + t))
    return model.data_preprocessor(data, training)


def test_training_step_reaches_the_ifr_block_and_the_track_head(model):
    model.train()
    model.zero_grad()
    losses = model(**_clip(model, 2, training=True), mode='loss')
    loss, log_vars = model.parse_losses(losses)
    assert math.isfinite(loss.item()) and 'loss_match' in log_vars
    loss.backward()
    (refiner, ) = find_refiners(model).values()
    track = list(model.track_head.parameters())
    for p in list(refiner.parameters()) + track:
        assert p.grad is not None and torch.isfinite(p.grad).all()
    assert any(p.grad.abs().sum() > 0 for p in refiner.parameters())
    assert any(p.grad.abs().sum() > 0 for p in track)


def _predict(model, clip, score_thr):
    model.eval()
    model.detector.roi_head.test_cfg.score_thr = score_thr
    with torch.no_grad():
        (out, ) = model(**clip, mode='predict')
    return [frame.pred_track_instances for frame in out]


def test_track_ids_of_a_static_scene_are_stable(model):
    frames = _predict(model, _clip(model, 3), score_thr=0.0)
    ids = [sorted(f.instances_id.tolist()) for f in frames]
    assert ids[0] and ids[0] == ids[1] == ids[2]
    for f in frames:
        assert f.masks.shape == (len(f), *SHAPE[1:])


def test_a_clip_without_detections_and_an_object_that_appears(model):
    empty = _predict(model, _clip(model, 3), score_thr=1.01)
    assert all(len(f) == 0 and f.masks.shape[0] == 0 for f in empty)
    # Frame 0 shows nothing, frames 1 and 2 the same objects: they get new
    # ids at frame 1 and keep them (the tracker carries over between calls).
    (first, ) = _predict(model, _clip(model, 1), score_thr=1.01)
    assert len(first) == 0
    (second, ) = _predict(model, _clip(model, 1, frame_id=1), score_thr=0.0)
    (third, ) = _predict(model, _clip(model, 1, frame_id=2), score_thr=0.0)
    assert len(second) > 0
    assert sorted(second.instances_id.tolist()) == sorted(third.instances_id.tolist())
