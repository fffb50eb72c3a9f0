"""The video models' warm start (``warm_start`` of IFRMaskTrackRCNN and
IFRSipMaskVIS) on tiny clips: what it changes, and when it resets."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmdet.models.vis import MaskTrackRCNN
from mmdet.registry import MODELS
from mmdet.testing import demo_track_inputs
from mmdet.utils import register_all_modules
from mmifr.engine.hooks import find_refiners

REPO_ROOT = osp.join(osp.dirname(__file__), *[osp.pardir] * 3)
DEMO = osp.join(REPO_ROOT, 'configs', 'ifr', 'demo')
CONFIGS = {
    'IFRMaskTrackRCNN': osp.join(DEMO, 'masktrack-rcnn_mbv2_fpn_shapes-video_ifr.py'),
    'IFRSipMaskVIS': osp.join(DEMO, 'sipmask-vis_mbv2_fpn_shapes-video_ifr.py'),
}
SHAPE = (3, 96, 96)


def _cfg(video_model, **warm_start):
    register_all_modules()
    import mmifr  # noqa: F401
    cfg = Config.fromfile(CONFIGS[video_model])
    cfg.model.detector.backbone.init_cfg = None
    cfg.model.warm_start = dict(cfg.model.get('warm_start') or {}, **warm_start)
    return cfg


def _build(video_model, state=None, **warm_start):
    cfg = _cfg(video_model, **warm_start)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    if state is None:
        model.init_weights()
    else:
        model.load_state_dict(state)
    test_cfg = (model.detector.roi_head.test_cfg
                if hasattr(model.detector, 'roi_head') else model.detector.bbox_head.test_cfg)
    test_cfg.score_thr = 0.0
    return model.eval()


@pytest.fixture(scope='module', params=list(CONFIGS))
def models(request):
    """The video model with its warm start off, to tolerance, and with a
    budget of 1 evaluation, all with the same weights."""
    cold = _build(request.param, enabled=False)
    state = cold.state_dict()
    return dict(cold=cold, warm=_build(request.param, state, enabled=True),
                budget=_build(request.param, state, enabled=True, budget=1))


def _clip(model, num_frames, video_id=1, first=0, seed=0):
    """A packed clip of a nearly static scene (each frame the first plus a
    little noise), its frames ``first, first + 1, ...`` of ``video_id``."""
    torch.manual_seed(seed)
    data = demo_track_inputs(batch_size=1, num_frames=num_frames, image_shapes=SHAPE,
                             num_classes=4)
    frames = data['inputs'][0]
    noise = torch.randint(-2, 3, frames.shape, generator=torch.Generator().manual_seed(seed))
    frames[:] = (frames[:1].int() + noise).clamp(0, 255).to(frames.dtype)
    for t, sample in enumerate(data['data_samples'][0]):
        sample.set_metainfo(dict(frame_id=first + t, video_id=video_id))
    return data


def _predict(model, data):
    """Each frame's predictions, and the solver steps and relative
    residuals of the solved samples."""
    for refiner in find_refiners(model).values():
        refiner.pop_stats()
    with torch.no_grad():
        (out, ) = model(**model.data_preprocessor(copy.deepcopy(data), False), mode='predict')
    stats = [s.forward for r in find_refiners(model).values() for s in r.pop_stats()]
    solves = dict(steps=torch.cat([s.nstep for s in stats]).float(),
                  residual=torch.cat([s.rel_residual for s in stats]))
    return [frame.pred_instances for frame in out], solves


def _masks_agree(a, b):
    assert len(a) == len(b) and torch.equal(a.bboxes, b.bboxes)
    if len(a):
        agree = (a.masks == b.masks).float().mean().item()
        assert agree > 0.99, agree


def test_off_is_the_video_model_itself(models):
    """``enabled=False``: the parent class's predict, bit for bit."""
    cold = models['cold']
    assert cold.warm_start_memory is None
    parent = type(cold).__mro__[2]
    data = _clip(cold, 3)
    ours, _ = _predict(cold, data)
    with torch.no_grad():
        (out, ) = parent.predict(cold, **cold.data_preprocessor(copy.deepcopy(data), False))
    for a, frame in zip(ours, out):
        assert torch.equal(a.masks, frame.pred_instances.masks)
        assert torch.equal(a.scores, frame.pred_instances.scores)


def test_warm_frames_start_nearer_the_same_masks(models):
    """Random weights do not converge in 15 steps (the demo checkpoints do:
    docs/results/video_warm_start.md): from the previous frame's
    equilibria the same steps end nearer the fixed point, and a budget of
    one evaluation costs one step per matched sample."""
    data = _clip(models['cold'], 3)
    cold, cold_solves = _predict(models['cold'], data)
    warm, warm_solves = _predict(models['warm'], data)
    assert len(cold[0]) > 0
    # Frame 0 starts cold: the same solve.
    assert torch.equal(cold[0].masks, warm[0].masks)
    if isinstance(models['cold'], MaskTrackRCNN):
        # The refiner makes the masks of given boxes: they hardly move. (A
        # dense head's unconverged towers also move its boxes.)
        for a, b in zip(cold, warm):
            _masks_agree(a, b)
    assert warm_solves['residual'].mean() < cold_solves['residual'].mean()
    _, budget_solves = _predict(models['budget'], data)
    steps = budget_solves['steps']
    assert (steps == 1).float().mean() > 0.5  # frames 1 and 2, where matched
    assert steps.mean() < 0.75 * cold_solves['steps'].mean()


def test_a_clip_in_one_call_is_the_clip_frame_by_frame(models):
    model = models['budget']
    data = _clip(model, 3)
    whole, _ = _predict(model, data)
    by_frame = []
    for t in range(3):
        one = _clip(model, 3)
        one['inputs'][0] = one['inputs'][0][t:t + 1]
        one['data_samples'][0].video_data_samples = [one['data_samples'][0][t]]
        by_frame += _predict(model, one)[0]
    for a, b in zip(whole, by_frame):
        assert torch.equal(a.masks, b.masks)


@pytest.mark.parametrize('next_clip', [
    dict(video_id=2, first=0),  # the next video
    dict(video_id=2, first=3),  # another video id without a frame 0
    dict(video_id=1, first=0),  # the same video again from its start
])
def test_nothing_carries_over_to_another_video(models, next_clip):
    model, cold = models['budget'], models['cold']
    _predict(model, _clip(model, 3))
    other = _clip(model, 1, seed=5, **next_clip)
    (after, ), _ = _predict(model, other)
    (fresh, ), _ = _predict(cold, other)
    assert torch.equal(after.masks, fresh.masks)


def test_frames_without_a_frame_id_are_refused(models):
    model = models['warm']
    data = _clip(model, 1)
    frame = data['data_samples'][0][0]
    meta = {k: v for k, v in frame.metainfo.items() if k != 'frame_id'}
    data['data_samples'][0].video_data_samples = [type(frame)(metainfo=meta)]
    with pytest.raises(ValueError, match='frame_id'):
        _predict(model, data)


def test_warm_start_is_a_partial_override_of_the_config():
    cfg = _cfg('IFRMaskTrackRCNN')
    assert cfg.model.warm_start == dict(enabled=False)  # the demo config's: off
    cfg.merge_from_dict({'model.warm_start.budget': 2})
    assert MODELS.build(cfg.model).warm_start_memory is None
    cfg.merge_from_dict({'model.warm_start.enabled': True})
    model = MODELS.build(cfg.model)
    assert model.warm_start_memory.budget == 2
    assert model.warm_start_memory.match_thr == cfg.model.warm_start.get('match_thr', 0.8)
    with pytest.raises(ValueError, match="warm_start.budget must be a positive int.*got 'x'"):
        cfg.merge_from_dict({'model.warm_start.budget': 'x'})
        MODELS.build(cfg.model)


def test_a_model_without_a_warm_start_loss_refuses_its_weight():
    cfg = _cfg('IFRSipMaskVIS', budget=2, train_loss_weight=1.0)
    with pytest.raises(ValueError, match='IFRSipMaskVIS has no warm-start training loss'):
        MODELS.build(cfg.model)
