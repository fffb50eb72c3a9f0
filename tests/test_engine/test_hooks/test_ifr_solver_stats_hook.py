"""Tests of :class:`mmifr.engine.hooks.IFRSolverStatsHook` in a real mmengine Runner.

The toy run (see ``ifr_toy_runner.py``) has 6 iterations: 3 unrolled with
``UNROLL_STEPS`` applications, then 3 DEQ solves of exactly
``TRAIN_MAX_ITER`` forward and ``BWD_MAX_ITER`` adjoint steps; validation
after iteration 4 runs ``TEST_MAX_ITER`` steps. So every logged value is
known in advance and tells which iteration it came from.
"""
from types import SimpleNamespace

import pytest
import torch
from ifr_toy_runner import (BWD_MAX_ITER, TRAIN_MAX_ITER, UNROLL_STEPS, ToyIFRModel,
                            count_module_walks, log_text, make_runner, scalars)
from mmengine.logging import MessageHub

from mmifr.engine.hooks import IFRSolverStatsHook

FWD_KEYS = ('fwd_nstep', 'fwd_rel_residual', 'fwd_abs_residual', 'fwd_converged')
BWD_KEYS = ('bwd_nstep', 'bwd_rel_residual', 'bwd_abs_residual', 'bwd_converged')


@pytest.fixture(scope='module')
def stats_run(tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('stats_run'))
    runner = make_runner(
        work_dir, [
            dict(type='IFRSolverStatsHook', by_refiner=True),
            dict(type='IFRUnrollWarmupHook', switch_iter=3, unroll_steps=UNROLL_STEPS),
        ],
        max_iters=6,
        val_interval=4)
    runner.train()
    return runner


def _history(runner, key):
    values, _ = runner.message_hub.get_scalar(key).data
    return [float(v) for v in values]


def test_message_hub_gets_one_value_per_iteration(stats_run):
    hub = stats_run.message_hub
    for key in FWD_KEYS + ('nonfinite_events', ):
        assert hub.get_scalar(f'train/ifr/{key}') is not None, key
    unroll, deq = [float(UNROLL_STEPS)] * 3, [float(TRAIN_MAX_ITER)] * 3
    assert _history(stats_run, 'train/ifr/fwd_nstep') == unroll + deq
    # The adjoint solve exists from the switch on only.
    assert _history(stats_run, 'train/ifr/bwd_nstep') == [float(BWD_MAX_ITER)] * 3
    for key in BWD_KEYS:
        assert len(_history(stats_run, f'train/ifr/{key}')) == 3, key
    # Unreachable tolerances: nothing converges, residuals are finite.
    assert _history(stats_run, 'train/ifr/fwd_converged') == [0.0] * 6
    assert all(0 < v < float('inf') for v in _history(stats_run, 'train/ifr/fwd_abs_residual'))
    assert _history(stats_run, 'train/ifr/nonfinite_events') == [0.0] * 6


def test_by_refiner_keys(stats_run):
    # The toy model's refiner is the module named 'refiner'.
    assert _history(stats_run, 'train/ifr/refiner/fwd_nstep') == \
        _history(stats_run, 'train/ifr/fwd_nstep')


def test_validation_stats_are_discarded(stats_run):
    """Validation (after iteration 4, ``TEST_MAX_ITER`` steps) must not leak
    into the next training average (iteration 5 logs ``TRAIN_MAX_ITER``)."""
    assert _history(stats_run, 'train/ifr/fwd_nstep')[4] == TRAIN_MAX_ITER
    assert not stats_run.model.refiner.stats_buffer


def test_scalars_json_has_each_iteration_own_stats(stats_run):
    """Every logged step carries the statistics of that very iteration: the
    hook must run before mmengine's LoggerHook, or step 1 would have none and
    step 4 would show step 3's unrolled count."""
    train = [s for s in scalars(stats_run) if 'loss' in s]
    assert [s['step'] for s in train] == [1, 2, 3, 4, 5, 6]
    assert [s.get('ifr/fwd_nstep') for s in train] == \
        [UNROLL_STEPS] * 3 + [TRAIN_MAX_ITER] * 3
    assert [s.get('ifr/bwd_nstep') for s in train] == [None] * 3 + [BWD_MAX_ITER] * 3
    assert [s.get('ifr/unroll_warmup') for s in train] == [1, 1, 1, 0, 0, 0]


def test_text_log_shows_the_stats(stats_run):
    text = log_text(stats_run)
    iter_lines = [line for line in text.splitlines() if 'Iter(train)' in line]
    assert len(iter_lines) == 6
    assert all('ifr/fwd_nstep: ' in line and 'ifr/fwd_rel_residual: ' in line
               for line in iter_lines)
    assert f'ifr/fwd_nstep: {float(TRAIN_MAX_ITER):.4f}' in iter_lines[-1]
    assert f'ifr/bwd_nstep: {float(BWD_MAX_ITER):.4f}' in iter_lines[-1]
    assert 'ifr/bwd_nstep' not in iter_lines[0]


def _stub_runner(model):
    hub = MessageHub(name=f'ifr_stats_stub_{id(model)}')
    return SimpleNamespace(model=model, message_hub=hub)


def test_nonfinite_events_are_summed_over_refiners():
    model = ToyIFRModel()
    second = ToyIFRModel().refiner
    model.add_module('second', second)
    model.eval()
    bad = torch.full((1, 8, 4, 4), float('nan'))
    with torch.no_grad():
        model.refiner(bad)
        second(bad)
        second(bad)
    runner = _stub_runner(model)
    IFRSolverStatsHook().after_train_iter(runner, 0)
    assert runner.message_hub.get_scalar('train/ifr/nonfinite_events').current() == 3
    assert runner.message_hub.get_scalar('train/ifr/fwd_nonfinite').current() == 1
    assert not model.refiner.stats_buffer and not second.stats_buffer


@pytest.mark.parametrize('event', ['after_val_epoch', 'after_test_epoch'])
def test_eval_epochs_discard_queued_stats(event):
    model = ToyIFRModel().eval()
    with torch.no_grad():
        model.refiner(torch.randn(2, 8, 4, 4))
    assert model.refiner.stats_buffer
    runner = _stub_runner(model)
    getattr(IFRSolverStatsHook(), event)(runner, metrics={})
    assert not model.refiner.stats_buffer
    assert 'train/ifr/fwd_nstep' not in runner.message_hub.log_scalars


def test_model_without_refiners_logs_nothing():
    runner = _stub_runner(torch.nn.Linear(2, 2))
    IFRSolverStatsHook().after_train_iter(runner, 0)
    assert not runner.message_hub.log_scalars


def test_refiners_are_found_once_per_phase_not_every_iteration(tmp_path):
    # named_modules() walks the whole detector (hundreds of modules): once per iteration, it is
    # a host-side stall of every training step on a GPU.
    runner = make_runner(
        str(tmp_path), [dict(type='IFRSolverStatsHook')], max_iters=6, val_interval=3)
    walks = count_module_walks(runner.model)
    runner.train()
    assert len(_history(runner, 'train/ifr/fwd_nstep')) == 6
    # before_train, then before_val after iterations 3 and 6.
    assert len(walks) <= 3
