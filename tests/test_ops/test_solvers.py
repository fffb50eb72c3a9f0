"""Tests of the batched root solvers in :mod:`mmifr.ops.solvers`.

Solvers are called directly here, with the ``func(z, index)`` convention, so
that per-sample bookkeeping (active set, best iterate, non-finite handling)
is observable call by call.
"""
import pytest
import torch

from mmifr.ops.solvers import SOLVERS, SolverStats, anderson, broyden, get_solver, register_solver

ALL_SOLVERS = sorted(SOLVERS)
F64 = torch.float64


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _injected(block, x):
    """``func(z, index)`` for ``block(z, x)`` restricted to the active rows."""

    def func(z, index):
        assert z.shape[0] == index.numel()
        return block(z, x[index])

    return func


def _slow_block(tanh_block, dim=16, contraction=0.95, seed=1):
    """A near-linear block whose Jacobian has a spectrum spread up to ``contraction``.

    Random ``W`` of spectral norm 0.95 has a much smaller spectral radius, so
    fixed-point iteration would be fast on it; a symmetric ``W`` with
    eigenvalues in ``[contraction / 2, contraction]`` makes it slow on purpose.
    """
    block = tanh_block(dim=dim, contraction=contraction, scale=0.1, seed=seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=_gen(seed), dtype=F64))
    eig = torch.linspace(contraction / 2, contraction, dim, dtype=F64)
    with torch.no_grad():
        block.weight.copy_(q @ torch.diag(eig) @ q.T)
    return block


def _relative_residual(block, x, z):
    fz = block(z, x)
    return (fz - z).norm(dim=1) / fz.norm(dim=1)


@pytest.mark.parametrize('stop_mode', ['rel', 'abs'])
@pytest.mark.parametrize('solver', ALL_SOLVERS)
def test_solver_reaches_tolerance(tanh_block, solver, stop_mode):
    block = tanh_block(dim=8, contraction=0.8)
    x = torch.randn(4, 8, generator=_gen(0), dtype=F64)
    tol = 1e-9
    with torch.no_grad():
        z, stats = SOLVERS[solver](
            _injected(block, x), torch.zeros_like(x), max_iter=300, tol=tol, stop_mode=stop_mode)
        fz = block(z, x)
    abs_res = (fz - z).norm(dim=1)
    rel_res = abs_res / fz.norm(dim=1)
    assert isinstance(stats, SolverStats)
    assert stats.converged.all()
    assert not stats.nonfinite.any()
    # The recorded residuals belong to the returned iterate.
    torch.testing.assert_close(stats.abs_residual, abs_res, rtol=1e-6, atol=1e-15)
    torch.testing.assert_close(stats.rel_residual, rel_res, rtol=1e-6, atol=1e-15)
    assert ((rel_res if stop_mode == 'rel' else abs_res) <= tol).all()
    assert (stats.nstep >= 1).all() and stats.nfev == int(stats.nstep.max())
    assert stats.nfev < 300


@pytest.mark.parametrize('solver', ['broyden', 'anderson'])
def test_accelerated_solvers_beat_fixed_point(tanh_block, solver):
    block = _slow_block(tanh_block)
    x = torch.randn(3, 16, generator=_gen(3), dtype=F64)
    kwargs = dict(max_iter=1000, tol=1e-8)
    with torch.no_grad():
        _, slow = SOLVERS['fixed_point'](_injected(block, x), torch.zeros_like(x), **kwargs)
        z, fast = SOLVERS[solver](_injected(block, x), torch.zeros_like(x), **kwargs)
    assert slow.converged.all() and fast.converged.all()
    assert (_relative_residual(block, x, z) <= 1e-8).all()
    assert 2 * fast.nfev < slow.nfev, (fast.nstep, slow.nstep)


def test_broyden_terminates_on_linear_problems_at_any_scale():
    """Good Broyden solves an ``n``-dim linear system in at most ``2n`` steps.

    The bound is exact arithmetic (Gay, 1979), i.e. ``2n + 1`` evaluations
    counting the initial one; a few more absorb rounding. The same problem
    scaled by 1e-6 must take the same number of steps in ``'rel'`` mode: the
    rank-one updates must not be skipped just because the residuals are small
    in absolute terms (as adjoint solves of averaged losses are).
    """
    dim = 12
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=_gen(0), dtype=F64))
    a = q @ torch.diag(torch.linspace(0.45, 0.9, dim, dtype=F64)) @ q.T
    c = torch.randn(3, dim, generator=_gen(1), dtype=F64)
    nsteps = []
    for scale in (1.0, 1e-6):
        z, stats = broyden(
            lambda z, i: z @ a.T + scale * c[i], torch.zeros_like(c), max_iter=200, tol=1e-10)
        assert stats.converged.all()
        expected = torch.linalg.solve(torch.eye(dim, dtype=F64) - a, scale * c.T).T
        torch.testing.assert_close(z, expected, rtol=1e-8, atol=1e-8 * scale)
        nsteps.append(stats.nstep)
    assert (nsteps[0] <= 2 * dim + 5).all(), nsteps[0]
    assert (nsteps[1] - nsteps[0]).abs().max() <= 1, nsteps


@pytest.mark.parametrize('solver', ALL_SOLVERS)
def test_per_sample_stopping(recorder, solver):
    # A linear map: in 'abs' mode the residuals scale with the injection, so
    # a small injection converges sooner than a large one, and x = 0 makes
    # the initial guess an exact fixed point.
    dim = 16
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=_gen(2), dtype=F64))
    a = q @ torch.diag(torch.linspace(0.45, 0.9, dim, dtype=F64)) @ q.T
    v = torch.randn(dim, generator=_gen(3), dtype=F64)
    x = torch.stack([0 * v, 1e-6 * v, v, 1e-3 * v])
    func = recorder(lambda z, index: z @ a.T + x[index])
    with torch.no_grad():
        z, stats = SOLVERS[solver](
            func, torch.zeros_like(x), max_iter=500, tol=1e-8, stop_mode='abs')
    assert stats.converged.all()
    nstep = stats.nstep
    assert nstep[0] == 1
    assert nstep[1] < nstep[3] < nstep[2], nstep
    # Call k sees exactly the samples that had not stopped before it, so a
    # stopped sample is never evaluated again.
    for k, index in enumerate(func.seconds):
        assert index.tolist() == torch.nonzero(nstep > k).flatten().tolist()
    assert sum(func.rows) == int(nstep.sum())
    assert stats.nfev == len(func.rows) == int(nstep.max())
    torch.testing.assert_close(z[0], torch.zeros(dim, dtype=F64), rtol=0, atol=0)


@pytest.mark.parametrize('stop_mode', ['rel', 'abs'])
@pytest.mark.parametrize('solver', ALL_SOLVERS)
def test_returns_lowest_residual_iterate(recorder, solver, stop_mode):
    # An expansive rotation: no solver settles within the budget, residuals
    # go up and down, and the best iterate is rarely the last one.
    dim, batch, max_iter = 8, 5, 7
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=_gen(4), dtype=F64))
    a = 1.3 * q
    x = torch.randn(batch, dim, generator=_gen(5), dtype=F64)
    z0 = torch.randn(batch, dim, generator=_gen(6), dtype=F64)
    func = recorder(lambda z, i: z @ a.T + x[i])
    with torch.no_grad():
        z, stats = SOLVERS[solver](func, z0, max_iter=max_iter, tol=1e-12, stop_mode=stop_mode)
    assert not stats.converged.any()
    assert (stats.nstep == max_iter).all()

    # Score every iterate the solver evaluated, per sample.
    iterates = torch.stack(func.inputs, dim=1)  # (B, K, D): nothing stopped early
    images = torch.stack(func.outputs, dim=1)
    abs_res = (images - iterates).norm(dim=2)
    res = abs_res if stop_mode == 'abs' else abs_res / (images.norm(dim=2) + 1e-8)
    best = res.argmin(dim=1)
    rows = torch.arange(batch)
    torch.testing.assert_close(z, iterates[rows, best], rtol=0, atol=0)
    torch.testing.assert_close(stats.abs_residual, abs_res[rows, best])
    # Otherwise the test could not tell "best" from "last".
    assert (best != max_iter - 1).any()


@pytest.mark.parametrize('solver', ALL_SOLVERS)
def test_initial_guess_is_first_iterate(tanh_block, recorder, solver):
    block = tanh_block(dim=5)
    x = torch.randn(3, 5, generator=_gen(7), dtype=F64)
    z0 = torch.randn(3, 5, generator=_gen(8), dtype=F64)
    func = recorder(_injected(block, x))
    with torch.no_grad():
        SOLVERS[solver](func, z0, max_iter=3, tol=1e-12)
    torch.testing.assert_close(func.inputs[0], z0, rtol=0, atol=0)


@pytest.mark.parametrize('solver', ALL_SOLVERS)
def test_nonfinite_samples_leave_the_active_set(tanh_block, solver):
    block = tanh_block(dim=6, contraction=0.5)
    x = torch.randn(4, 6, generator=_gen(9), dtype=F64)
    calls = torch.zeros(4, dtype=torch.long)

    def func(z, index):
        calls[index] += 1
        out = block(z, x[index])
        # Sample 1 turns NaN at its 3rd evaluation, sample 2 Inf at its 2nd.
        poison = torch.zeros_like(out)
        poison[(index == 1) & (calls[index] >= 3)] = float('nan')
        poison[(index == 2) & (calls[index] >= 2), 0] = float('inf')
        return out + poison

    with torch.no_grad():
        z, stats = SOLVERS[solver](func, torch.zeros_like(x), max_iter=100, tol=1e-10)
    assert stats.nonfinite.tolist() == [False, True, True, False]
    assert stats.converged.tolist() == [True, False, False, True]
    assert torch.isfinite(z).all()
    assert torch.isfinite(stats.abs_residual).all() and torch.isfinite(stats.rel_residual).all()
    # Poisoned samples stop at the evaluation that went bad.
    assert calls.tolist()[1:3] == [3, 2]
    assert stats.nstep.tolist()[1:3] == [3, 2]
    # The healthy samples are not disturbed by their neighbours.
    assert (_relative_residual(block, x[[0, 3]], z[[0, 3]]) <= 1e-10).all()
    # Sample 2's only finite evaluation was at the initial guess.
    torch.testing.assert_close(z[2], torch.zeros(6, dtype=F64), rtol=0, atol=0)


@pytest.mark.parametrize('kwargs', [dict(memory=3), dict(memory=1)])
def test_limited_memory_broyden(tanh_block, kwargs):
    block = tanh_block(dim=8, contraction=0.7)
    x = torch.randn(2, 8, generator=_gen(10), dtype=F64)
    with torch.no_grad():
        z, stats = broyden(
            _injected(block, x), torch.zeros_like(x), max_iter=200, tol=1e-10, **kwargs)
    assert stats.converged.all()
    assert (_relative_residual(block, x, z) <= 1e-10).all()


@pytest.mark.parametrize('kwargs', [dict(memory=2), dict(beta=0.5), dict(lam=1e-2)])
def test_anderson_options(tanh_block, kwargs):
    block = tanh_block(dim=8, contraction=0.7)
    x = torch.randn(2, 8, generator=_gen(11), dtype=F64)
    with torch.no_grad():
        z, stats = anderson(
            _injected(block, x), torch.zeros_like(x), max_iter=200, tol=1e-10, **kwargs)
    assert stats.converged.all()
    assert (_relative_residual(block, x, z) <= 1e-10).all()


@pytest.mark.parametrize('solver', ALL_SOLVERS)
def test_low_precision_func_keeps_state_dtype(tanh_block, solver):
    """``func`` may answer in bf16 (autocast); the state stays in ``z0``'s dtype."""
    block = tanh_block(dim=8, contraction=0.5, dtype=torch.float32)
    x = torch.randn(2, 8, generator=_gen(12))
    seen = []

    def func(z, index):
        seen.append(z.dtype)
        return block(z, x[index]).to(torch.bfloat16)

    with torch.no_grad():
        z, stats = SOLVERS[solver](func, torch.zeros_like(x), max_iter=10, tol=1e-2)
    assert set(seen) == {torch.float32}
    assert z.dtype == torch.float32
    assert stats.abs_residual.dtype == stats.rel_residual.dtype == torch.float32
    assert torch.isfinite(z).all()


def test_registry():
    assert set(ALL_SOLVERS) >= {'anderson', 'broyden', 'fixed_point'}
    assert get_solver('broyden') is broyden
    with pytest.raises(ValueError, match=r"solver='newton'.*anderson.*broyden.*fixed_point"):
        get_solver('newton')
    with pytest.raises(KeyError, match='already registered'):
        register_solver('broyden')(lambda *args, **kwargs: None)


def test_stats_summary():
    stats = SolverStats(
        nstep=torch.tensor([2, 4]),
        abs_residual=torch.tensor([1.0, 3.0]),
        rel_residual=torch.tensor([0.1, 0.3]),
        converged=torch.tensor([True, False]),
        nonfinite=torch.tensor([False, False]),
        nfev=4)
    summary = stats.summary('fwd_')
    assert summary == pytest.approx(
        dict(
            fwd_nstep=3.0,
            fwd_nstep_max=4.0,
            fwd_abs_residual=2.0,
            fwd_rel_residual=0.2,
            fwd_converged=0.5,
            fwd_nonfinite=0.0))
    empty = SolverStats(
        *(t[:0] for t in (stats.nstep, stats.abs_residual, stats.rel_residual, stats.converged,
                          stats.nonfinite)),
        nfev=0)
    assert empty.batch_size == 0 and empty.summary() == {}
