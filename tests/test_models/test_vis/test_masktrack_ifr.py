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


# ------------------------------------------------------- warm-start training


def _pair(model, key_ids, ref_ids):
    """A packed training pair whose objects carry the given instance ids."""
    packed = clip(model, 2, training=True)
    (sample, ) = packed['data_samples']
    sample.get_key_frames()[0].gt_instances.instances_ids = torch.tensor(key_ids)
    sample.get_ref_frames()[0].gt_instances.instances_ids = torch.tensor(ref_ids)
    return packed


@pytest.fixture
def warm_model(model):
    """The module's model with a warm-start loss of 2 evaluations."""
    model.set_warm_start(dict(enabled=True, budget=2, train_loss_weight=0.5))
    yield model.train()
    model.set_warm_start(dict(enabled=False))


def test_without_train_loss_weight_the_losses_are_masktrack_rcnn_s(model):
    model.train()
    assert 'loss_mask_warm' not in model(**_pair(model, [100, 101], [101, 102]), mode='loss')


def test_warm_start_loss_runs_the_budget_from_the_reference_frame(warm_model, monkeypatch):
    (refiner, ) = find_refiners(warm_model).values()
    calls = []
    unroll_from = refiner._unroll_from

    def spy(x, h0, budget):
        calls.append((len(x), budget, torch.is_grad_enabled(), h0.abs().sum().item()))
        return unroll_from(x, h0, budget)

    monkeypatch.setattr(refiner, '_unroll_from', spy)
    refiner.pop_stats()
    warm_model.zero_grad()
    losses = warm_model(**_pair(warm_model, [100, 101], [101, 102]), mode='loss')
    # One object (101) is in both frames: one RoI, from a non-zero start.
    assert [c[:3] for c in calls] == [(1, 2, True)] and calls[0][3] > 0
    warm = losses['loss_mask_warm']
    assert warm.requires_grad and warm.item() > 0
    # The warm solves stay out of the training solve's statistics: one
    # record, of the key frame's sampled RoIs.
    assert len(refiner.pop_stats()) == 1
    warm.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in refiner.parameters())
    # The RoI features are detached: the detector's features get nothing.
    backbone = warm_model.detector.backbone
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in backbone.parameters())


def test_warm_start_loss_is_zero_without_a_shared_object_or_a_solve(warm_model):
    losses = warm_model(**_pair(warm_model, [100, 101], [102, 103]), mode='loss')
    assert losses['loss_mask_warm'].item() == 0
    (refiner, ) = find_refiners(warm_model).values()
    refiner.set_unroll_warmup(4)  # the recipe's unrolled phase: nothing solves
    try:
        losses = warm_model(**_pair(warm_model, [100, 101], [100, 101]), mode='loss')
    finally:
        refiner.set_unroll_warmup(None)
    assert losses['loss_mask_warm'].item() == 0
