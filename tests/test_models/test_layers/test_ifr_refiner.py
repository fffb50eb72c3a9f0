"""Tests of :class:`mmifr.models.layers.IFRRefiner`, the module every IFR head runs."""
import functools
import logging

import pytest
import torch
from mmengine.logging import MMLogger

from mmdet.registry import MODELS
from mmifr.models.layers import DoubleResidualBlock, IFRRefiner
from mmifr.ops import SOLVERS
from mmifr.ops.solvers import register_solver

C = 16  # channels: small, divisible by the default 4 GroupNorm groups


def _refiner(seed=0, **kwargs):
    torch.manual_seed(seed)
    kwargs.setdefault('in_channels', C)
    kwargs.setdefault('channels', C)
    refiner = IFRRefiner(**kwargs)
    refiner.init_weights()
    return refiner


def _x(n=3, channels=C, size=7, seed=1):
    torch.manual_seed(seed)
    return torch.randn(n, channels, size, size)


class _LogRecords(logging.Handler):
    """Collects the records of mmengine's current logger."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def mm_log():
    logger = MMLogger.get_current_instance()
    handler = _LogRecords()
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)


@pytest.mark.parametrize('mode', ['deq', 'unroll', 'explicit'])
def test_modes_give_the_same_shapes(mode):
    refiner = _refiner(mode=mode)
    x = _x()
    for training in (True, False):
        refiner.train(training)
        assert refiner(x).shape == x.shape
    blocks = [m for m in refiner.modules() if isinstance(m, DoubleResidualBlock)]
    # Table 6: one weight-shared block, or num_steps independent ones.
    assert len(blocks) == (4 if mode == 'explicit' else 1)


def test_built_from_config_with_block_options():
    refiner = MODELS.build(
        dict(
            type='IFRRefiner',
            in_channels=C,
            channels=C,
            block=dict(type='DoubleResidualBlock', mid_channels=8, form='plain')))
    assert refiner.block.channels == C  # filled in from the refiner
    assert refiner.block.conv1.out_channels == 8 and refiner.block.form == 'plain'


def test_long_unroll_approaches_the_deq_solution():
    """On a contractive block, the DEQ solution is the limit of unrolling.

    The bounded block is a contraction at init (measured on these inputs:
    plain iteration shrinks the relative residual by 0.85x per step or
    faster, to ~2e-7 after 80 steps), so 150 weight-shared applications reach
    the fixed point that a tightly tolerated Broyden solve finds. Double
    precision keeps both far below the comparison tolerance.
    """
    deq = _refiner(solver=dict(solver='broyden', max_iter=100, tol=1e-9)).double().eval()
    unroll = _refiner(mode='unroll', num_steps=150).double().eval()
    unroll.load_state_dict(deq.state_dict())
    few = _refiner(mode='unroll', num_steps=2).double().eval()
    few.load_state_dict(deq.state_dict())
    x = _x().double()
    with torch.no_grad():
        h_deq, h_unroll, h_few = deq(x), unroll(x), few(x)
    assert deq.deq.last_stats.forward.converged.all()
    torch.testing.assert_close(h_unroll, h_deq, rtol=1e-6, atol=1e-6)
    # Not trivially equal: a short unroll is far from the equilibrium.
    assert (h_few - h_deq).norm() > 1e-2 * h_deq.norm()


@pytest.mark.parametrize('mode', ['deq', 'unroll', 'explicit'])
def test_zero_samples_in_train_and_eval(mode):
    refiner = _refiner(mode=mode).train()
    x = torch.randn(0, C, 7, 7, requires_grad=True)
    out = refiner(x)
    assert out.shape == (0, C, 7, 7)
    out.sum().backward()
    # Every parameter stays in the graph (DDP needs it) with a zero gradient.
    for name, p in refiner.named_parameters():
        assert p.grad is not None, name
        assert not p.grad.any(), name
    refiner.eval()
    with torch.no_grad():
        assert refiner(x).shape == (0, C, 7, 7)


def test_test_solver_overrides_apply_in_eval_only():
    refiner = _refiner(
        solver=dict(solver='fixed_point', max_iter=7, tol=1e-12), test_solver=dict(max_iter=2))
    x = _x()
    refiner.train()
    refiner(x).sum().backward()
    assert refiner.deq.last_stats.forward.nstep.tolist() == [7, 7, 7]
    refiner.eval()
    with torch.no_grad():
        refiner(x)
    assert refiner.deq.last_stats.forward.nstep.tolist() == [2, 2, 2]
    refiner.train()
    refiner(x)
    assert refiner.deq.last_stats.forward.nstep.tolist() == [7, 7, 7]


def test_set_unroll_warmup_switches_deq_to_unroll():
    refiner = _refiner(solver=dict(solver='broyden', max_iter=10, tol=1e-12))
    x = _x()
    refiner.set_unroll_warmup(3)
    assert refiner.effective_mode == 'unroll'
    refiner(x).sum().backward()
    stats = refiner.deq.last_stats
    # Three differentiable applications, ordinary autograd: no adjoint solve.
    assert stats.forward.nfev == 3 and stats.backward is None
    assert refiner.block.conv1.parametrizations.weight.original1.grad.abs().sum() > 0
    refiner.set_unroll_warmup(None)
    assert refiner.effective_mode == 'deq'
    refiner(x).sum().backward()
    stats = refiner.deq.last_stats
    assert stats.forward.nfev == 10 and stats.backward is not None
    # The warm-up only concerns 'deq': the other modes ignore it.
    for mode in ('unroll', 'explicit'):
        other = _refiner(mode=mode)
        other.set_unroll_warmup(3)
        assert other.effective_mode == mode


def test_stats_are_queued_and_pop_clears():
    refiner = _refiner(solver=dict(solver='broyden', max_iter=5, backward_max_iter=5))
    x = _x()
    refiner(x).sum().backward()
    refiner(x[:2])
    stats = refiner.pop_stats()
    assert [s.forward.batch_size for s in stats] == [3, 2]
    # The queued record of the first call got its backward half in backward.
    assert 'bwd_nstep' in stats[0].summary() and 'bwd_nstep' not in stats[1].summary()
    assert refiner.pop_stats() == []
    # Explicit mode has no solver, hence nothing to queue.
    explicit = _refiner(mode='explicit')
    explicit(x)
    assert explicit.pop_stats() == []


@pytest.mark.parametrize('training', [True, False], ids=['train', 'eval'])
def test_nan_input_is_contained_counted_and_logged(training, mm_log):
    refiner = _refiner().train(training)
    x = _x()
    x[1, 0, 3, 3] = float('nan')
    with torch.set_grad_enabled(training):
        out = refiner(x)
    stats = refiner.deq.last_stats.forward
    assert stats.nonfinite.tolist() == [False, True, False]
    assert refiner.nonfinite_events == 1
    # The poisoned sample falls back to its best finite iterate (H0 = 0 here);
    # the others are solved as usual.
    assert torch.isfinite(out).all()
    clean = _refiner().train(training)
    with torch.set_grad_enabled(training):
        expected = clean(x[[0, 2]])
    torch.testing.assert_close(out[[0, 2]], expected)
    warnings = [r for r in mm_log if r.levelno == logging.WARNING and 'NaN/Inf' in r.getMessage()]
    assert len(warnings) == 1
    assert '1 of 3 samples' in warnings[0].getMessage()
    assert refiner.pop_stats()[0].summary()['fwd_nonfinite'] == 1


def test_nonfinite_warning_is_rate_limited(mm_log):
    refiner = _refiner(solver=dict(solver='broyden', max_iter=2)).eval()
    x = torch.full((1, C, 3, 3), float('nan'))
    with torch.no_grad():
        for _ in range(5):
            refiner(x)
    assert refiner.nonfinite_events == 5
    assert sum('NaN/Inf' in r.getMessage() for r in mm_log) == 3


@pytest.mark.parametrize(
    'kwargs,message', [
        (dict(mode='implicit'), r"mode='implicit' is not supported; allowed values: "
         r"\['deq', 'unroll', 'explicit'\]"),
        (dict(channels=0), 'channels must be a positive int, got 0'),
        (dict(channels=-4), 'channels must be a positive int, got -4'),
        (dict(in_channels=0), 'in_channels must be a positive int, got 0'),
        (dict(num_steps=0), 'num_steps must be a positive int, got 0'),
        (dict(solver=dict(solver='newton')), r"solver='newton' is not supported; allowed "
         r"values: \[.*'broyden'.*\]"),
        (dict(solver=dict(solver='broyden', max_iter=0)), 'max_iter must be a positive int'),
        (dict(test_solver=dict(max_iter=0)), 'max_iter must be a positive int'),
        (dict(test_solver=dict(solver='newton')), "solver='newton' is not supported"),
        (dict(jac_reg=dict(weight=0)), 'jac_reg.weight must be a positive float, got 0'),
        (dict(jac_reg=dict(weight=-1.0)), 'jac_reg.weight must be a positive float, got -1.0'),
        (dict(jac_reg=dict(num_probes=0)), 'jac_reg.num_probes must be a positive int, got 0'),
        (dict(jac_reg=dict(wieght=1.0)), r"jac_reg has unknown key\(s\) \['wieght'\]; "
         r"allowed keys: \['weight', 'num_probes', 'freq', 'ramp_ratio', 'end_ratio'\]"),
        (dict(jac_reg=dict(freq=0)), r'jac_reg.freq must be in \(0, 1\], got 0'),
        (dict(jac_reg=dict(freq=1.5)), r'jac_reg.freq must be in \(0, 1\], got 1.5'),
        (dict(jac_reg=dict(ramp_ratio=1.0)), r'jac_reg.ramp_ratio must be in \[0, 1\), got 1.0'),
        (dict(jac_reg=dict(end_ratio=0)), r'jac_reg.end_ratio must be in \(0, 1\], got 0'),
        (dict(jac_reg=dict(ramp_ratio=0.5, end_ratio=0.4)),
         r'jac_reg.ramp_ratio \(0.5\) must be below jac_reg.end_ratio \(0.4\)'),
        (dict(mode='explicit', jac_reg=dict()), "jac_reg needs a fixed point"),
    ],
    ids=[
        'mode', 'channels=0', 'channels<0', 'in_channels', 'num_steps', 'solver', 'max_iter',
        'test_max_iter', 'test_solver', 'jac_weight=0', 'jac_weight<0', 'jac_probes',
        'jac_key', 'jac_freq=0', 'jac_freq>1', 'jac_ramp', 'jac_end', 'jac_ramp>end',
        'jac_explicit'
    ])
def test_invalid_options_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        IFRRefiner(**{'in_channels': C, 'channels': C, **kwargs})


def test_a_solver_registered_later_is_accepted_and_runs_the_solve():
    # A plugin registers its solver after mmifr is imported: the refiner must accept the name
    # and hand its solves to that function, forward and (as backward_solver) adjoint.
    calls = []

    @functools.wraps(SOLVERS['anderson'])
    def recording_anderson(func, z0, *args, **kwargs):
        calls.append(z0.shape[0])
        return SOLVERS['anderson'](func, z0, *args, **kwargs)

    register_solver('test_recording_anderson')(recording_anderson)
    try:
        refiner = _refiner(solver=dict(solver='test_recording_anderson', max_iter=3,
                                       backward_solver='test_recording_anderson',
                                       backward_max_iter=3)).train()
        refiner(_x().requires_grad_()).square().mean().backward()
    finally:
        SOLVERS.pop('test_recording_anderson')
    assert calls == [3, 3]  # the forward solve and the adjoint one, all 3 RoIs


@pytest.mark.parametrize('mode', ['deq', 'unroll', 'explicit'])
def test_in_channels_differing_from_channels_builds_an_input_projection(mode):
    refiner = _refiner(in_channels=C + 2, channels=C, mode=mode)
    assert refiner.inject is not None
    assert refiner.inject.conv.in_channels == C + 2 and refiner.inject.conv.out_channels == C
    x = _x(channels=C + 2)
    out = refiner(x)
    assert out.shape == (3, C, 7, 7)
    out.square().mean().backward()
    # The projection is trained through the solve (DEQ: through dL/dX).
    assert refiner.inject.conv.weight.grad.abs().sum() > 0
    assert _refiner().inject is None


def test_test_solver_switching_solver_drops_the_training_solver_options():
    # The default training solve keeps a 5-update Broyden history; a fixed-point
    # inference solve takes no such option and must not inherit it.
    refiner = _refiner(test_solver=dict(solver='fixed_point', max_iter=3))
    assert refiner.test_solver == dict(solver='fixed_point', max_iter=3)
    refiner.eval()
    with torch.no_grad():
        refiner(_x())
    assert refiner.deq.last_stats.forward.nstep.tolist() == [3, 3, 3]
    # Options given for the new solver are kept.
    refiner = _refiner(test_solver=dict(solver='anderson', solver_kwargs=dict(memory=2)))
    assert refiner._eval_overrides()['solver_kwargs'] == dict(memory=2)


@pytest.mark.parametrize('mode', ['deq', 'unroll'])
def test_jac_reg_queues_the_weighted_estimate_at_the_refined_feature(mode):
    from mmifr.ops import jacobian_frobenius
    refiner = _refiner(mode=mode, jac_reg=dict(weight=0.5, num_probes=2)).train()
    x = _x()
    torch.manual_seed(7)
    h = refiner(x)
    (loss, ) = refiner.pop_aux_losses().values()
    z = h.detach().requires_grad_()
    torch.manual_seed(7)
    expected = 0.5 * jacobian_frobenius(refiner.block(z, x), z, num_probes=2)
    torch.testing.assert_close(loss, expected)
    assert refiner.pop_aux_losses() == {}
    assert refiner.pop_jacobian_estimates() == [pytest.approx(expected.item() / 0.5)]


def test_jac_reg_weight_follows_the_schedule():
    """Ramped up over the first ramp_ratio, off from end_ratio on; the full
    weight where no hook told the progress."""
    refiner = _refiner(jac_reg=dict(weight=2.0, ramp_ratio=0.2, end_ratio=0.8))
    assert refiner.jac_reg_weight() == 2.0
    for progress, weight in ((0.0, 0.0), (0.1, 1.0), (0.2, 2.0), (0.5, 2.0), (0.8, 0.0),
                             (1.0, 0.0)):
        refiner.set_train_progress(progress)
        assert refiner.jac_reg_weight() == pytest.approx(weight), progress
    with pytest.raises(ValueError, match='training progress must be in'):
        refiner.set_train_progress(1.5)


def test_jac_reg_off_by_the_schedule_queues_a_zero_and_computes_nothing():
    refiner = _refiner(jac_reg=dict(weight=2.0, end_ratio=0.5)).train()
    refiner.set_train_progress(0.6)
    refiner(_x())
    assert refiner.pop_aux_losses() == {'loss_ifr_jac': 0.0}
    assert refiner.pop_jacobian_estimates() == []
    refiner.set_train_progress(0.4)
    refiner(_x())
    assert refiner.pop_aux_losses()['loss_ifr_jac'] > 0
    assert len(refiner.pop_jacobian_estimates()) == 1


def test_jac_reg_freq_computes_the_penalty_on_that_share_of_forwards():
    import random
    refiner = _refiner(jac_reg=dict(weight=1.0, freq=0.3),
                       solver=dict(solver='fixed_point', max_iter=2)).train()
    x = _x(n=1, size=3)
    random.seed(0)
    computed = 0
    for _ in range(200):
        refiner(x)
        loss = refiner.pop_aux_losses()['loss_ifr_jac']
        computed += bool(loss > 0)
    assert len(refiner.pop_jacobian_estimates()) == computed
    assert 40 <= computed <= 80  # 60 expected; binomial std 6.5


def test_jac_reg_gradient_reaches_the_block_not_x_and_only_adds_to_the_main_loss():
    refiner = _refiner(jac_reg=dict(weight=3.0)).train()
    plain = _refiner()  # same seed: the same weights
    x = _x().requires_grad_()
    torch.manual_seed(0)
    h = refiner(x)
    main = h.square().mean()
    aux = refiner.pop_aux_losses()['loss_ifr_jac']
    g_main = torch.autograd.grad(main, list(refiner.block.parameters()), retain_graph=True)
    convs = [refiner.block.conv1, refiner.block.conv2]
    g_aux = torch.autograd.grad(aux, [p for c in convs for p in c.parameters()],
                                retain_graph=True)
    assert all(g.abs().sum() > 0 for g in g_aux)
    # The features (shared with the box head in a detector) are left alone.
    (g_x, ) = torch.autograd.grad(aux, x, allow_unused=True)
    assert g_x is None
    # The main loss's gradient is that of a refiner without jac_reg.
    plain(x).square().mean().backward()
    for a, p in zip(g_main, plain.block.parameters()):
        torch.testing.assert_close(a, p.grad)


def test_jac_reg_is_training_only():
    refiner = _refiner(jac_reg=dict(weight=1.0))
    refiner.eval()
    with torch.no_grad():
        refiner(_x())
    refiner.train()
    with torch.no_grad():
        refiner(_x())
    assert refiner.pop_aux_losses() == {} and refiner.pop_jacobian_estimates() == []


def test_jac_reg_without_a_collector_fails_loudly():
    from mmifr.models.layers.ifr_refiner import MAX_QUEUED_AUX_LOSSES
    refiner = _refiner(jac_reg=dict(weight=1.0), solver=dict(solver='fixed_point', max_iter=2))
    x = _x(n=1, size=3)
    for _ in range(MAX_QUEUED_AUX_LOSSES):
        refiner(x)
    with pytest.raises(RuntimeError, match='IFRAuxLossHook'):
        refiner(x)
    refiner.pop_aux_losses()
    refiner(x)  # collected again: fine


def test_jac_reg_training_makes_the_block_contract():
    """Minimising the penalty alone shrinks the Jacobian at the fixed point."""
    from mmifr.ops import jacobian_frobenius
    refiner = _refiner(jac_reg=dict(weight=1.0), solver=dict(solver='broyden', max_iter=10))
    x = _x()

    def measured():
        h = refiner.eval()(x).detach().requires_grad_()
        torch.manual_seed(123)
        return jacobian_frobenius(refiner.block(h, x), h, num_probes=64).item()

    before = measured()
    optim = torch.optim.SGD(refiner.parameters(), lr=2.0)
    refiner.train()
    for _ in range(20):
        refiner(x)
        optim.zero_grad()
        refiner.pop_aux_losses()['loss_ifr_jac'].backward()
        optim.step()
    assert measured() < 0.5 * before


@pytest.mark.parametrize('mode', ['deq', 'unroll', 'explicit'])
def test_act_cfg_applies_the_activation_to_the_refined_feature_only(mode):
    x = _x()
    plain = _refiner(mode=mode).eval()
    with_act = _refiner(mode=mode, act_cfg=dict(type='ReLU')).eval()
    # Same seed, same weights: the activation adds no parameter.
    with_act.load_state_dict(plain.state_dict())
    h = plain(x)
    assert (h < 0).any()  # GroupNorm's output is signed
    torch.testing.assert_close(with_act(x), torch.relu(h))


def test_act_cfg_reaches_the_fp_correction_iterates():
    refiner = _refiner(budget=3, fp_correction=dict(gamma=0.5), act_cfg=dict(type='ReLU'))
    out = refiner.train()(_x())
    states = refiner.pop_states()
    assert len(states) == 3 and all((s >= 0).all() for s in states)
    torch.testing.assert_close(states[-1], out)


@pytest.mark.parametrize('act_cfg', ['ReLU', dict(type='NoSuchAct')])
def test_invalid_act_cfg_raises(act_cfg):
    with pytest.raises((ValueError, KeyError), match='act_cfg|NoSuchAct'):
        IFRRefiner(in_channels=C, channels=C, act_cfg=act_cfg)
