"""MaskTrack R-CNN with the IFR mask head (the video demo's model) on tiny clips."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from video_clips import (assert_no_detections_then_an_appearing_object,
                         assert_static_scene_keeps_its_ids, clip)

from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmifr.engine.hooks import find_refiners

REPO_ROOT = osp.join(osp.dirname(__file__), *[osp.pardir] * 3)
CONFIG = osp.join(REPO_ROOT, 'configs', 'ifr', 'demo',
                  'masktrack-rcnn_mbv2_fpn_shapes-video_ifr.py')


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


def test_training_step_reaches_the_ifr_block_and_the_track_head(model):
    model.train()
    model.zero_grad()
    losses = model(**clip(model, 2, training=True), mode='loss')
    loss, log_vars = model.parse_losses(losses)
    assert math.isfinite(loss.item()) and 'loss_match' in log_vars
    loss.backward()
    (refiner, ) = find_refiners(model).values()
    track = list(model.track_head.parameters())
    for p in list(refiner.parameters()) + track:
        assert p.grad is not None and torch.isfinite(p.grad).all()
    assert any(p.grad.abs().sum() > 0 for p in refiner.parameters())
    assert any(p.grad.abs().sum() > 0 for p in track)


def test_track_ids_of_a_static_scene_are_stable(model):
    assert_static_scene_keeps_its_ids(model, model.detector.roi_head.test_cfg)


def test_a_clip_without_detections_and_an_object_that_appears(model):
    assert_no_detections_then_an_appearing_object(model, model.detector.roi_head.test_cfg)
