"""Tests of the fixed-budget refiner (``IFRRefiner(budget=K)``), its iterates
(``fp_correction``) and the public inference-solve setter."""
import pytest
import torch

from mmifr.models.layers import IFRRefiner
from mmifr.models.layers.ifr_refiner import fp_correction_weights

C = 16


def _refiner(**kwargs):
    torch.manual_seed(0)
    refiner = IFRRefiner(C, C, **kwargs)
    refiner.init_weights()
    return refiner


def _x(n=3):
    return torch.randn(n, C, 7, 7, generator=torch.Generator().manual_seed(1))


def _iterate(refiner, x, steps):
    h = torch.zeros_like(x)
    for _ in range(steps):
        h = refiner.block(h, x)
    return h


@pytest.mark.parametrize('training', [True, False], ids=['train', 'eval'])
def test_budget_runs_k_block_evaluations_from_zero(training):
    refiner = _refiner(budget=3).train(training)
    x = _x()
    calls = []
    refiner.block.register_forward_hook(lambda *args: calls.append(1))
    with torch.set_grad_enabled(training):
        h = refiner(x)
    assert len(calls) == 3
    calls.clear()
    torch.testing.assert_close(h, _iterate(refiner, x, 3))
    stats = refiner.pop_stats()[-1].forward
    assert stats.nstep.tolist() == [3, 3, 3] and stats.nfev == 3
    # A budget has no adjoint solve: the gradient is ordinary autograd.
    if training:
        h.sum().backward()
        assert refiner.block.conv1.parametrizations.weight.original1.grad is not None


def test_budget_ignores_the_warmup_and_test_solver_replaces_its_inference():
    refiner = _refiner(budget=2)
    refiner.set_unroll_warmup(4)
    assert refiner.unroll_warmup is None
    x = _x()
    refiner.eval()
    with torch.no_grad():
        torch.testing.assert_close(refiner(x), _iterate(refiner, x, 2))
        # Tools evaluate a budget-trained model at another budget ...
        refiner.set_test_solver(dict(solver='unroll', max_iter=4))
        torch.testing.assert_close(refiner(x), _iterate(refiner, x, 4))
        # ... or with the full solve.
        refiner.set_test_solver(dict(solver='broyden', max_iter=40, tol=1e-6))
        refiner(x)
        assert refiner.deq.last_stats.forward.nfev > 4
        refiner.set_test_solver(None)
        torch.testing.assert_close(refiner(x), _iterate(refiner, x, 2))


@pytest.mark.parametrize('value', [0, -1, 1.5, True, '2'])
def test_bad_budget_is_refused_with_its_value(value):
    with pytest.raises(ValueError, match=rf'budget must be a positive int .*got {value!r}'):
        _refiner(budget=value)


def test_budget_needs_the_deq_mode():
    with pytest.raises(ValueError, match="mode='explicit' has its own num_steps"):
        _refiner(mode='explicit', budget=2)


def test_budget_starts_from_the_initializers_guess_and_trains_it():
    """Skip-DEQ's joint training: the guess is H0 of the K evaluations, in the
    graph of the task loss, with no regression loss of its own."""
    refiner = _refiner(budget=2, initializer=dict(mid_channels=4)).train()
    for p in refiner.initializer.parameters():
        torch.nn.init.normal_(p, std=0.1)
    x = _x()
    h = refiner(x)
    guess = refiner.initializer(x)
    torch.testing.assert_close(h, refiner.block(refiner.block(guess, x), x))
    assert refiner.pop_aux_losses() == {}
    h.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in refiner.initializer.parameters())


def test_set_test_solver_validates_and_keeps_the_previous_one():
    refiner = _refiner(budget=2, test_solver=dict(solver='unroll', max_iter=3))
    with pytest.raises(ValueError, match='test_solver has unknown key'):
        refiner.set_test_solver(dict(max_iters=3))
    with pytest.raises(ValueError, match='test_solver: max_iter must be a positive int, got 0'):
        refiner.set_test_solver(dict(solver='unroll', max_iter=0))
    assert refiner.test_solver == dict(solver='unroll', max_iter=3)


def test_fp_correction_keeps_every_iterate_in_the_graph():
    refiner = _refiner(budget=3, fp_correction=dict(gamma=0.5)).train()
    x = _x()
    h = refiner(x)
    states = refiner.pop_states()
    assert len(states) == 3 and states[-1] is h
    torch.testing.assert_close(states[0], _iterate(refiner, x, 1))
    torch.testing.assert_close(states[1], _iterate(refiner, x, 2))
    # Popped once: a later forward does not see stale iterates.
    assert refiner.pop_states() == []
    states[0].sum().backward()
    assert refiner.block.conv1.parametrizations.weight.original1.grad is not None
    # Not kept in eval mode, nor without fp_correction.
    refiner.eval()
    with torch.no_grad():
        refiner(x)
    assert refiner.pop_states() == []
    plain = _refiner(budget=3).train()
    plain(x)
    assert plain.pop_states() == []


def test_fp_correction_weights_are_normalised_powers_of_gamma():
    assert fp_correction_weights(0.8, 2) == pytest.approx([0.8 / 1.8, 1 / 1.8])
    weights = fp_correction_weights(0.5, 3)
    assert sum(weights) == pytest.approx(1.0)
    assert weights == pytest.approx([0.25 / 1.75, 0.5 / 1.75, 1 / 1.75])
    assert fp_correction_weights(1.0, 4) == pytest.approx([0.25] * 4)


@pytest.mark.parametrize('cfg,message', [
    (dict(gamma=0), r'fp_correction.gamma must be in \(0, 1\], got 0'),
    (dict(gamma=1.5), r'got 1.5'),
    (dict(gama=0.8), r"unknown key\(s\) \['gama'\]"),
])
def test_bad_fp_correction_is_refused(cfg, message):
    with pytest.raises(ValueError, match=message):
        _refiner(budget=2, fp_correction=cfg)
    with pytest.raises(ValueError, match='fp_correction supervises the iterates of a fixed budget'):
        _refiner(fp_correction=dict(gamma=0.8))


def test_consistency_pulls_the_last_iterate_onto_the_fixed_point():
    """The loss is the squared relative distance of h_K to H*, H* solved
    without a graph from h_K; its gradient shrinks that distance."""
    refiner = _refiner(budget=2, consistency=dict(weight=3.0),
                       solver=dict(max_iter=60, tol=1e-6)).train()
    assert refiner.has_aux_losses
    x = _x()
    h = refiner(x)
    (loss, ) = refiner.pop_aux_losses().values()
    with torch.no_grad():
        h_star = _iterate(refiner, x, 60)
        expected = 3.0 * (h - h_star).pow(2).mean() / h_star.pow(2).mean()
    torch.testing.assert_close(loss, expected, rtol=1e-3, atol=1e-6)
    assert expected > 1e-4
    # The gradient reaches the block through h_K only (H* is a constant) and
    # a step along it brings h_K closer to H*.
    params = [p for p in refiner.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    with torch.no_grad():
        for p, g in zip(params, grads):
            if g is not None:
                p -= 1e-2 * g / max(float(g.norm()), 1e-12)
    refiner(x)
    (after, ) = refiner.pop_aux_losses().values()
    assert after < loss
    # Nothing is queued at inference.
    refiner.eval()
    with torch.no_grad():
        refiner(x)
    assert refiner.pop_aux_losses() == {}


def test_consistency_of_an_empty_batch_is_zero_and_in_the_graph():
    refiner = _refiner(budget=2, consistency=dict()).train()
    refiner(torch.zeros(0, C, 7, 7))
    (loss, ) = refiner.pop_aux_losses().values()
    assert loss.item() == 0 and loss.requires_grad


@pytest.mark.parametrize('cfg,message', [
    (dict(weight=0), r'consistency.weight must be a positive float, got 0'),
    (dict(weight=True), r'got True'),
    (dict(wieght=1.0), r"unknown key\(s\) \['wieght'\]"),
])
def test_bad_consistency_is_refused(cfg, message):
    with pytest.raises(ValueError, match=message):
        _refiner(budget=2, consistency=cfg)
    with pytest.raises(ValueError, match='consistency pulls the last iterate of a fixed budget'):
        _refiner(consistency=dict())


def test_partial_solver_changes_only_its_keys():
    refiner = _refiner(solver=dict(max_iter=30))
    opts = refiner.deq.options
    assert opts['max_iter'] == 30 and opts['solver'] == 'broyden'
    assert opts['solver_kwargs'] == dict(memory=5) and opts['chunk_size'] == 64
    # A solve that names its solver is whole.
    whole = _refiner(solver=dict(solver='anderson', max_iter=20))
    assert whole.deq.options['solver_kwargs'] == {} and whole.deq.options['chunk_size'] is None
    # block and initializer may omit their type too.
    assert _refiner(block=dict(mid_channels=8)).block.conv1.out_channels == 8
    assert _refiner(initializer=dict(mid_channels=4)).initializer.reduce.out_channels == 4


class _CountingBool(torch.Tensor):
    """A tensor that records every read of its value by the host."""
    reads = 0

    def __bool__(self):
        type(self).reads += 1
        return super().__bool__()

    def __int__(self):
        type(self).reads += 1
        return super().__int__()

    def item(self):
        type(self).reads += 1
        return super().item()


def test_record_reads_nothing_from_an_accelerator(monkeypatch):
    """A solve recorded on a CUDA tensor is not read at every forward (it
    would make the host wait for the device); pop_stats() reads it."""
    from mmifr.ops.deq import DEQStats
    from mmifr.ops.solvers import SolverStats
    refiner = _refiner()

    class _Cuda:
        type = 'cuda'

    nonfinite = torch.tensor([True, False]).as_subclass(_CountingBool)
    stats = DEQStats(SolverStats(
        nstep=torch.ones(2), abs_residual=torch.zeros(2), rel_residual=torch.zeros(2),
        converged=torch.ones(2, dtype=torch.bool), nonfinite=nonfinite, nfev=1))
    monkeypatch.setattr(_CountingBool, 'device', property(lambda self: _Cuda()), raising=False)
    _CountingBool.reads = 0
    refiner._record(stats)
    assert _CountingBool.reads == 0 and refiner.nonfinite_events == 0
    refiner.pop_stats()
    assert refiner.nonfinite_events == 1
