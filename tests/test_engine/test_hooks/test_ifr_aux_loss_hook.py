"""Tests of :class:`mmifr.engine.hooks.IFRAuxLossHook` in a real mmengine Runner.

The toy model (``ifr_toy_runner.py``) has one refiner; with ``jac_reg`` its
Jacobian penalty must reach the loss dict, the total loss, the optimizer
step and the log, as mmdet's own losses do.
"""
import math

import pytest
from ifr_toy_runner import make_runner, scalars

WEIGHT = 0.25
HOOKS = [dict(type='IFRAuxLossHook'), dict(type='IFRSolverStatsHook')]


@pytest.fixture(scope='module')
def jac_run(tmp_path_factory):
    runner = make_runner(
        str(tmp_path_factory.mktemp('jac_run')), HOOKS, max_iters=4,
        jac_reg=dict(weight=WEIGHT))
    runner.train()
    return runner


def test_penalty_is_a_logged_loss_of_every_iteration(jac_run):
    train = [s for s in scalars(jac_run) if 'loss' in s]
    assert len(train) == 4
    for s in train:
        # loss_ifr_jac = weight * the unweighted estimate logged by the stats hook.
        assert s['loss_ifr_jac'] == pytest.approx(WEIGHT * s['ifr/jac_frobenius'], rel=1e-3)
        assert s['loss_ifr_jac'] > 0
        # parse_losses summed it into the total: loss = mse + penalty.
        assert math.isfinite(s['loss'])
        assert s['loss'] == pytest.approx(s['loss_mse'] + s['loss_ifr_jac'], rel=1e-3, abs=1e-4)


def test_queue_is_emptied_each_iteration(jac_run):
    # Four iterations: without collection the queue would hold four losses.
    assert jac_run.model.refiner.aux_losses == []


def test_penalty_changes_the_trained_weights(tmp_path):
    def final_weight(**kwargs):
        runner = make_runner(str(tmp_path / str(len(kwargs))), HOOKS, max_iters=2, **kwargs)
        runner.train()
        return runner.model.refiner.block.conv1.weight.detach().clone()

    plain = final_weight()
    regularised = final_weight(jac_reg=dict(weight=10.0))
    assert (plain - regularised).abs().max() > 1e-6


def test_without_jac_reg_the_hook_adds_nothing(tmp_path):
    runner = make_runner(str(tmp_path), HOOKS, max_iters=2)
    runner.train()
    train = [s for s in scalars(runner) if 'loss' in s]
    assert all('loss_ifr_jac' not in s and 'ifr/jac_frobenius' not in s for s in train)
    assert runner.model._forward_hooks == {}


def test_initializer_loss_is_logged_and_trains_the_initializer(tmp_path):
    runner = make_runner(
        str(tmp_path), HOOKS, max_iters=3, initializer=dict(type='FixedPointInitializer'))
    before = runner.model.refiner.initializer.expand.weight.detach().clone()
    runner.train()
    train = [s for s in scalars(runner) if 'loss' in s]
    assert len(train) == 3
    for s in train:
        assert s['loss_ifr_init'] > 0 and 'loss_ifr_jac' not in s
        assert s['loss'] == pytest.approx(s['loss_mse'] + s['loss_ifr_init'], rel=1e-3, abs=1e-4)
    after = runner.model.refiner.initializer.expand.weight.detach()
    assert (after - before).abs().max() > 0
    assert runner.model.refiner.aux_losses == []


def test_consistency_loss_is_logged_and_summed_into_the_total(tmp_path):
    runner = make_runner(
        str(tmp_path), HOOKS, max_iters=3, budget=2, consistency=dict(weight=WEIGHT))
    runner.train()
    train = [s for s in scalars(runner) if 'loss' in s]
    assert len(train) == 3
    for s in train:
        assert s['loss_ifr_consistency'] > 0 and 'loss_ifr_jac' not in s
        assert s['loss'] == pytest.approx(
            s['loss_mse'] + s['loss_ifr_consistency'], rel=1e-3, abs=1e-4)
    assert runner.model.refiner.aux_losses == []


def test_hook_schedules_jac_reg_by_the_training_progress(tmp_path):
    """4 iterations, ramp over the first half, off from 3/4: iteration 0 has
    weight 0, 1 half the weight, 2 the full weight, 3 none."""
    runner = make_runner(
        str(tmp_path), HOOKS, max_iters=4,
        jac_reg=dict(weight=WEIGHT, ramp_ratio=0.5, end_ratio=0.75))
    runner.train()
    train = [s for s in scalars(runner) if 'loss' in s]
    assert len(train) == 4
    assert train[0]['loss_ifr_jac'] == 0 and train[3]['loss_ifr_jac'] == 0
    for s, weight in ((train[1], WEIGHT / 2), (train[2], WEIGHT)):
        assert s['loss_ifr_jac'] > 0
        assert s['loss_ifr_jac'] == pytest.approx(weight * s['ifr/jac_frobenius'], rel=1e-3)
    assert runner.model.refiner.train_progress == 0.75
