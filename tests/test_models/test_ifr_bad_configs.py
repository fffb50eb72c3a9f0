"""Invalid IFR options in a config fail when the model is built, with a
ValueError that names the option and what is allowed.

Every case edits the project's own ``configs/ifr/mask_rcnn_r50_ifr_1x.py`` and
builds the *whole* detector (``MODELS.build(cfg.model)``), or the whole
Runner for hook options, as ``tools/train.py`` does; nothing is forwarded.
"""
import copy
import os.path as osp
import re

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmdet.registry import MODELS

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO_ROOT, 'configs', 'ifr', 'mask_rcnn_r50_ifr_1x.py')

ALLOWED_SOLVERS = "['anderson', 'broyden', 'fixed_point', 'unroll']"


@pytest.fixture(scope='module')
def cfg(mmdet_configs_resolvable):
    cfg = Config.fromfile(CONFIG)
    # No ImageNet weights may be fetched; irrelevant to building anyway.
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmdet')
    return cfg


@pytest.fixture(scope='module')
def mmdet_configs_resolvable():
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        pytest.fail("pkg_resources is missing: install 'setuptools<81'")


def _build_with(cfg, ifr_cfg=None, **head):
    model = copy.deepcopy(cfg.model)
    if ifr_cfg is not None:
        model.roi_head.mask_head.ifr_cfg = dict(type='IFRRefiner', **ifr_cfg)
    model.roi_head.mask_head.update(head)
    return MODELS.build(model)


def test_the_config_builds(cfg):
    model = _build_with(cfg, dict(solver=dict(solver='anderson', solver_kwargs=dict(memory=3))))
    refiner = model.roi_head.mask_head.convs[0]
    assert refiner.deq.options['solver_kwargs'] == dict(memory=3)


BAD_IFR_OPTIONS = [
    # solver names
    (dict(solver=dict(solver='newton')),
     "solver='newton' is not supported; allowed values: " + ALLOWED_SOLVERS),
    (dict(solver=dict(backward_solver='unroll')),
     "backward_solver='unroll' is not supported; allowed values: "
     "['anderson', 'broyden', 'fixed_point']"),
    (dict(solver=dict(stop_mode='l2')), "stop_mode='l2' is not supported; allowed values: "
     "['abs', 'rel']"),
    (dict(solver=dict(grad='exact')), "grad='exact' is not supported; allowed values: "
     "['ift', 'phantom']"),
    # iteration limits and tolerances
    (dict(solver=dict(max_iter=0)), 'max_iter must be a positive int, got 0'),
    (dict(solver=dict(max_iter=2.5)), 'max_iter must be a positive int, got 2.5'),
    (dict(solver=dict(max_iter=True)), 'max_iter must be a positive int, got True'),
    (dict(solver=dict(backward_max_iter=-1)), 'backward_max_iter must be a positive int, got -1'),
    (dict(solver=dict(tol=0.0)), 'tol must be a positive float, got 0.0'),
    (dict(solver=dict(backward_tol=-1e-3)), 'backward_tol must be a positive float, got -0.001'),
    (dict(solver=dict(grad='phantom', phantom_damping=1.5)),
     'phantom_damping must be in (0, 1], got 1.5'),
    # misspelt keys
    (dict(solver=dict(max_iters=15)), "solver has unknown key(s) ['max_iters']; allowed keys: "
     "['solver', 'max_iter', 'tol'"),
    (dict(solver=dict(solver_kwargs=dict(memroy=5))),
     "solver option 'memroy' is not accepted by the 'broyden' solver; "
     "allowed options: ['history_dtype', 'memory']"),
    (dict(solver=dict(solver='anderson', solver_kwargs=dict(memory=0))),
     'memory must be a positive int, got 0'),
    (dict(solver=dict(backward_solver_kwargs=dict(beta=0.5))),
     "solver option 'beta' is not accepted by the 'broyden' solver"),
    # eval-time overrides
    (dict(test_solver=dict(max_iter=0)), 'test_solver: max_iter must be a positive int, got 0'),
    (dict(test_solver=dict(solver='newton')),
     "test_solver: solver='newton' is not supported; allowed values: " + ALLOWED_SOLVERS),
    (dict(test_solver=dict(maxiter=5)), "test_solver has unknown key(s) ['maxiter']"),
    # refiner options
    (dict(mode='implicit'), "mode='implicit' is not supported; allowed values: "
     "['deq', 'unroll', 'explicit']"),
    (dict(num_steps=0), 'num_steps must be a positive int, got 0'),
    (dict(block=dict(type='DoubleResidualBlock', form='eq5')),
     "form='eq5' is not supported; allowed values: ['bounded', 'literal', 'plain']"),
    (dict(block=dict(type='DoubleResidualBlock', norm_cfg=dict(type='GN', num_groups=3))),
     'channels=256 is not divisible by the GroupNorm num_groups=3'),
    # channels that do not match the head
    (dict(channels=128), 'IFRConvFCMaskHead: ifr_cfg.channels=128 does not match the `convs` '
     'tower it replaces (channels=256)'),
    (dict(in_channels=64), 'IFRConvFCMaskHead: ifr_cfg.in_channels=64 does not match the '
     '`convs` tower it replaces (in_channels=256)'),
]


@pytest.mark.parametrize(
    'ifr_cfg, message', BAD_IFR_OPTIONS, ids=[str(i) for i, _ in enumerate(BAD_IFR_OPTIONS)])
def test_bad_ifr_option_fails_at_build(cfg, ifr_cfg, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _build_with(cfg, ifr_cfg)


def test_head_without_convs_fails_at_build(cfg):
    with pytest.raises(ValueError, match=r'IFR replaces the stacked convs of `convs`.*num_convs=0'):
        _build_with(cfg, num_convs=0)


@pytest.mark.parametrize('hook, message', [
    (dict(type='IFRUnrollWarmupHook', switch_ratio=1.5),
     'switch_ratio must be in [0, 1], got 1.5'),
    (dict(type='IFRUnrollWarmupHook', switch_iter=-1),
     'switch_iter must be a non-negative int, got -1'),
    (dict(type='IFRUnrollWarmupHook', unroll_steps=0),
     'unroll_steps must be a positive int, got 0'),
])
def test_bad_hook_option_fails_when_the_runner_is_built(cfg, tmp_path, hook, message):
    run_cfg = copy.deepcopy(cfg)
    run_cfg.work_dir = str(tmp_path)
    run_cfg.custom_hooks = [dict(type='IFRSolverStatsHook'), hook]
    with pytest.raises(ValueError, match=re.escape(message)):
        Runner.from_cfg(run_cfg)


def test_bad_model_option_fails_when_the_runner_is_built(cfg, tmp_path):
    run_cfg = copy.deepcopy(cfg)
    run_cfg.work_dir = str(tmp_path)
    run_cfg.model.roi_head.mask_head.ifr_cfg = dict(
        type='IFRRefiner', solver=dict(solver='broyden', max_iter=0))
    with pytest.raises(ValueError, match='max_iter must be a positive int, got 0'):
        Runner.from_cfg(run_cfg)
