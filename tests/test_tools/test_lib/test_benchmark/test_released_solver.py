"""``tools.lib.benchmark.released_solver``: the reference solver of the cost benchmark."""
import pytest
import torch

from mmifr.ops import solvers
from mmifr.ops.solvers import SOLVERS, broyden
from tools.lib.benchmark.released_solver import broyden_v0, register_v0

F64 = torch.float64


def _linear_problem(batch=5, dim=10, seed=0):
    # Per-sample scales: with an absolute tolerance the samples stop at
    # different steps, so the state is compacted.
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=F64))
    a = q @ torch.diag(torch.linspace(0.2, 0.9, dim, dtype=F64)) @ q.T
    x = torch.randn(batch, dim, generator=gen, dtype=F64)
    x = x * torch.logspace(-3, 0, batch, dtype=F64)[:, None]

    def func(z, index):
        return z @ a.T + x[index]

    exact = torch.linalg.solve(torch.eye(dim, dtype=F64) - a, x.T).T
    return func, x, exact


def test_v0_solves_a_linear_contraction():
    func, x, exact = _linear_problem()
    with torch.no_grad():
        z, stats = broyden_v0(func, torch.zeros_like(x), max_iter=40, tol=1e-9,
                              stop_mode='abs')
    assert stats.converged.all()
    assert len(set(stats.nstep.tolist())) > 1  # samples finished apart: compacted
    torch.testing.assert_close(z, exact, rtol=0, atol=1e-8)


@pytest.mark.parametrize('seed', [0, 1])
def test_v0_takes_the_steps_of_the_current_broyden(seed):
    # The rewrite changed the bookkeeping, not the iteration.
    func, x, _ = _linear_problem(seed=seed)
    with torch.no_grad():
        z0, s0 = broyden_v0(func, torch.zeros_like(x), max_iter=40, tol=1e-9, stop_mode='abs')
    with torch.no_grad():
        z1, s1 = broyden(func, torch.zeros_like(x), max_iter=40, tol=1e-9, stop_mode='abs')
    assert torch.equal(s0.nstep, s1.nstep)
    torch.testing.assert_close(z0, z1, rtol=0, atol=1e-9)


def test_v0_compacts_by_copies_as_released(monkeypatch):
    # The released code copied the state when a sample finished; the core
    # solver's in-place compaction must not be what the benchmark's row runs.
    def no_inplace(*args, **kwargs):
        raise AssertionError('broyden_v0 compacted in place')

    monkeypatch.setattr(solvers, '_compact_rows', no_inplace)
    func, x, exact = _linear_problem()
    with torch.no_grad():
        z, stats = broyden_v0(func, torch.zeros_like(x), max_iter=40, tol=1e-9,
                              stop_mode='abs')
    assert len(set(stats.nstep.tolist())) > 1  # samples finished apart: compacted
    torch.testing.assert_close(z, exact, rtol=0, atol=1e-8)


def test_register_v0_once(no_leaked_v0_solver):
    register_v0()
    register_v0()  # a second call must not raise "already registered"
    assert SOLVERS['broyden_v0'] is broyden_v0
