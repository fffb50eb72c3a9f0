"""Tests of :class:`mmifr.engine.hooks.IFRUnrollWarmupHook` in a real mmengine Runner."""
import os.path as osp
from types import SimpleNamespace

import pytest
from ifr_toy_runner import (TEST_MAX_ITER, TRAIN_MAX_ITER, UNROLL_STEPS, PhaseRecorder, ToyIFRModel,
                            count_module_walks, make_runner)

from mmdet.registry import HOOKS
from mmifr.engine.hooks import IFRUnrollWarmupHook


def _warmup(**kwargs):
    return dict(type='IFRUnrollWarmupHook', unroll_steps=UNROLL_STEPS, **kwargs)


def _phases(records):
    return [(r['iter'], r['mode']) for r in records]


@pytest.fixture(scope='module')
def warmup_run(tmp_path_factory):
    """6 iterations, switch at 0.5 * 6 = 3, validation after iterations 2 and 4,
    checkpoints after 2, 4 and 6."""
    work_dir = str(tmp_path_factory.mktemp('warmup_run'))
    recorder = PhaseRecorder()
    runner = make_runner(
        work_dir, [_warmup(switch_ratio=0.5), recorder], max_iters=6, val_interval=2)
    runner.train()
    return SimpleNamespace(runner=runner, recorder=recorder, work_dir=work_dir)


def test_unroll_before_switch_and_deq_after(warmup_run):
    rec = warmup_run.recorder
    # runner.iter is the 0-based index of the iteration in after_train_iter.
    assert _phases(rec.train) == [(0, 'unroll'), (1, 'unroll'), (2, 'unroll'), (3, 'deq'),
                                  (4, 'deq'), (5, 'deq')]
    # The modes really differ: 2 differentiable steps, no adjoint solve ...
    for r in rec.train[:3]:
        assert r['fwd_nfev'] == UNROLL_STEPS and not r['has_backward']
    # ... then the DEQ solve with its implicit backward.
    for r in rec.train[3:]:
        assert r['fwd_nfev'] == TRAIN_MAX_ITER and r['has_backward']
    hub = warmup_run.runner.message_hub.get_scalar('train/ifr/unroll_warmup')
    assert list(hub.data[0]) == [1, 1, 1, 0, 0, 0]


def test_validation_uses_the_training_phase(warmup_run):
    """Validation during warm-up runs unrolled, as training does; after the
    switch it runs the DEQ solve with ``test_solver``'s budget. (Validation
    runs after 2, 4 and 6 finished iterations.)"""
    val = warmup_run.recorder.val
    assert {(r['iter'], r['mode'], r['fwd_nfev'])
            for r in val} == {(2, 'unroll', UNROLL_STEPS), (4, 'deq', TEST_MAX_ITER),
                              (6, 'deq', TEST_MAX_ITER)}


@pytest.mark.parametrize(
    'checkpoint,expected', [
        ('iter_2.pth', [(2, 'unroll'), (3, 'deq'), (4, 'deq'), (5, 'deq')]),
        ('iter_4.pth', [(4, 'deq'), (5, 'deq')]),
    ],
    ids=['before-switch', 'after-switch'])
def test_resumed_run_is_in_the_right_phase(warmup_run, tmp_path, checkpoint, expected):
    ckpt = osp.join(warmup_run.work_dir, checkpoint)
    assert osp.exists(ckpt)
    recorder = PhaseRecorder()
    runner = make_runner(
        str(tmp_path), [_warmup(switch_ratio=0.5), recorder],
        max_iters=6,
        load_from=ckpt,
        resume=True)
    runner.train()
    start = int(checkpoint[len('iter_'):-len('.pth')])
    # The phase is set before the first resumed iteration, from runner.iter.
    assert recorder.train_start == [dict(iter=start, mode='unroll' if start < 3 else 'deq')]
    assert _phases(recorder.train) == expected


@pytest.mark.parametrize(
    'kwargs,expected', [
        (dict(switch_iter=1), ['unroll'] + ['deq'] * 3),
        (dict(switch_ratio=0.5, switch_iter=3), ['unroll'] * 3 + ['deq']),
        (dict(switch_ratio=0.0), ['deq'] * 4),
        (dict(switch_ratio=1.0), ['unroll'] * 4),
    ],
    ids=['switch_iter', 'switch_iter-overrides-ratio', 'ratio=0', 'ratio=1'])
def test_switch_point(tmp_path, kwargs, expected):
    recorder = PhaseRecorder()
    runner = make_runner(str(tmp_path), [_warmup(**kwargs), recorder], max_iters=4)
    runner.train()
    assert [r['mode'] for r in recorder.train] == expected


def test_default_switch_is_five_ninths_of_the_schedule():
    hook = IFRUnrollWarmupHook()
    # 50k of 90k iterations in the released code.
    assert hook.switch_point(SimpleNamespace(max_iters=90000)) == 50000
    assert hook.unroll_steps == 4


@pytest.mark.parametrize(
    'kwargs,message', [
        (dict(switch_ratio=-0.1), 'switch_ratio must be in \\[0, 1\\], got -0.1'),
        (dict(switch_ratio=1.5), 'switch_ratio must be in \\[0, 1\\], got 1.5'),
        (dict(switch_iter=-1), 'switch_iter must be a non-negative int, got -1'),
        (dict(switch_iter=2.5), 'switch_iter must be a non-negative int, got 2.5'),
        (dict(unroll_steps=0), 'unroll_steps must be a positive int, got 0'),
        (dict(unroll_steps=1.5), 'unroll_steps must be a positive int, got 1.5'),
    ],
    ids=[
        'ratio<0', 'ratio>1', 'switch_iter<0', 'switch_iter-float', 'unroll_steps=0',
        'unroll_steps-float'
    ])
def test_invalid_options_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HOOKS.build(dict(type='IFRUnrollWarmupHook', **kwargs))


def test_before_test_resets_to_deq(tmp_path):
    """A standalone test run evaluates with the DEQ solve, even if the model
    was left in warm-up (e.g. a checkpoint saved during it)."""
    recorder = PhaseRecorder()
    runner = make_runner(
        str(tmp_path), [_warmup(switch_ratio=1.0), recorder], max_iters=1, with_test=True)
    runner.train()
    refiner = runner.model.refiner
    assert refiner.effective_mode == 'unroll'  # left in warm-up by training
    runner.test()
    assert refiner.effective_mode == 'deq'
    assert recorder.test and all(r['mode'] == 'deq' and r['fwd_nfev'] == TEST_MAX_ITER
                                 for r in recorder.test)


def test_before_test_hook_call_alone():
    model = ToyIFRModel()
    model.refiner.set_unroll_warmup(UNROLL_STEPS)
    IFRUnrollWarmupHook().before_test(SimpleNamespace(model=model))
    assert model.refiner.unroll_warmup is None and model.refiner.effective_mode == 'deq'


def test_refiners_are_found_once_not_every_iteration(tmp_path):
    # The phase is set before every iteration; walking named_modules() for it each time would
    # stall every training step on the host.
    runner = make_runner(str(tmp_path), [_warmup(switch_ratio=0.5)], max_iters=6)
    walks = count_module_walks(runner.model)
    runner.train()
    phases = runner.message_hub.get_scalar('train/ifr/unroll_warmup').data[0]
    assert list(phases) == [1, 1, 1, 0, 0, 0]
    assert runner.model.refiner.unroll_warmup is None
    assert len(walks) == 1  # before_train
