"""Tests of the DEQ op's cost levers: chunked solves, ``output='fz'``, low
precision solver history and in-place compaction of the solver state.

Each lever must leave the result (or, for a low-precision history, the
solver's convergence) unchanged; what each one buys in time and memory is
measured by ``tools/analysis_tools/benchmark_ifr_cost.py``.
"""
import pytest
import torch

from mmifr.ops import DEQFixedPoint, deq_fixed_point
from mmifr.ops import solvers as solvers_mod
from mmifr.ops.deq import SolverConfig
from mmifr.ops.solvers import SOLVERS, broyden

F64 = torch.float64
ALL_SOLVERS = sorted(SOLVERS)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _problem(conv_block, batch=7, seed=0, contraction=0.8):
    block = conv_block(channels=2, contraction=contraction, seed=seed)
    x = torch.randn(batch, 2, 4, 4, generator=_gen(seed + 1), dtype=F64, requires_grad=True)
    return block, x


def _grads(block, x, **options):
    x.grad = None
    block.zero_grad(set_to_none=True)
    h, stats = deq_fixed_point(block, x, params=list(block.parameters()), **options)
    probe = torch.randn(h.shape, generator=_gen(99), dtype=h.dtype)
    (h * probe).sum().backward()
    return h.detach(), [x.grad.clone(), *(p.grad.clone() for p in block.parameters())], stats


@pytest.mark.parametrize('solver', ALL_SOLVERS)
@pytest.mark.parametrize('chunk_size', [1, 3, 7, 100])
def test_chunked_solve_equals_whole_batch(conv_block, solver, chunk_size):
    block, x = _problem(conv_block)
    # A loose tolerance and few steps: samples stop at different steps, so the
    # per-sample bookkeeping across chunk boundaries is exercised.
    options = dict(solver=solver, max_iter=12, tol=1e-4, backward_max_iter=12,
                   backward_tol=1e-4)
    h_ref, g_ref, s_ref = _grads(block, x, **options)
    h, g, stats = _grads(block, x, chunk_size=chunk_size, **options)
    torch.testing.assert_close(h, h_ref, rtol=1e-10, atol=1e-12)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    for name in ('nstep', 'converged', 'nonfinite'):
        assert torch.equal(getattr(stats.forward, name), getattr(s_ref.forward, name)), name
        assert torch.equal(getattr(stats.backward, name), getattr(s_ref.backward, name)), name
    torch.testing.assert_close(stats.forward.rel_residual, s_ref.forward.rel_residual)
    n_chunks = -(-x.shape[0] // chunk_size)
    assert stats.forward.nfev >= s_ref.forward.nfev
    assert stats.forward.nfev <= n_chunks * s_ref.forward.nfev


def test_chunked_solve_without_grad_and_module_option(conv_block):
    block, x = _problem(conv_block)
    deq = DEQFixedPoint(max_iter=20, tol=1e-8, chunk_size=2)
    with torch.no_grad():
        h = deq(block, x)
        h_ref, _ = deq_fixed_point(block, x, max_iter=20, tol=1e-8)
    torch.testing.assert_close(h, h_ref)
    assert deq.last_stats.forward.nstep.shape == (x.shape[0], )
    with pytest.raises(ValueError, match='chunk_size must be a positive int'):
        DEQFixedPoint(chunk_size=0)


@pytest.mark.parametrize('solver', ALL_SOLVERS)
def test_output_fz_is_f_of_the_best_iterate(conv_block, solver):
    block, x = _problem(conv_block, contraction=0.6)
    x = x.detach()
    with torch.no_grad():
        z, stats_z = deq_fixed_point(block, x, solver=solver, max_iter=4, tol=1e-12)
        fz, stats_fz = deq_fixed_point(block, x, solver=solver, max_iter=4, tol=1e-12,
                                       output='fz')
        torch.testing.assert_close(fz, block(z, x))
        # The statistics describe z; for a contraction F(z) is closer.
        torch.testing.assert_close(stats_fz.forward.rel_residual, stats_z.forward.rel_residual)
        res_z = (block(z, x) - z).flatten(1).norm(dim=1)
        res_fz = (block(fz, x) - fz).flatten(1).norm(dim=1)
    assert (res_fz < res_z).all()


def test_output_fz_with_one_step_is_one_application(conv_block):
    # With one evaluation the best iterate is the initial guess 0 itself;
    # 'fz' returns F(0, x) instead of that zero tensor.
    block, x = _problem(conv_block)
    x = x.detach()
    with torch.no_grad():
        z, _ = deq_fixed_point(block, x, max_iter=1)
        fz, _ = deq_fixed_point(block, x, max_iter=1, output='fz')
        assert torch.equal(z, torch.zeros_like(x))
        torch.testing.assert_close(fz, block(torch.zeros_like(x), x))


def test_output_option_is_validated():
    with pytest.raises(ValueError, match="output='f' is not supported"):
        DEQFixedPoint(output='f')

    def solver_without_fz(func, z0, max_iter, tol, stop_mode='rel'):
        raise AssertionError('not called')

    solvers_mod.register_solver('test_no_fz')(solver_without_fz)
    try:
        with pytest.raises(ValueError, match="output='fz' needs a solver that takes return_fz"):
            SolverConfig('test_no_fz', return_fz=True)
    finally:
        del solvers_mod.SOLVERS['test_no_fz']


@pytest.mark.parametrize('dtype', ['bfloat16', 'float16', torch.bfloat16])
def test_low_precision_history_converges(tanh_block, dtype):
    block = tanh_block(dim=64, contraction=0.9, dtype=torch.float32)
    x = torch.randn(5, 64, generator=_gen(3))

    def func(z, index):
        return block(z, x[index])

    with torch.no_grad():
        z_ref, ref = broyden(func, torch.zeros_like(x), 40, 1e-6)
        z, stats = broyden(func, torch.zeros_like(x), 40, 1e-6, history_dtype=dtype)
    assert stats.converged.all()
    assert z.dtype == torch.float32
    # The history's rounding costs at most a step or two.
    assert (stats.nstep <= ref.nstep + 2).all()
    torch.testing.assert_close(z, z_ref, rtol=1e-4, atol=1e-5)


def test_history_dtype_is_validated():
    with pytest.raises(ValueError, match="history_dtype='int8' is not supported"):
        DEQFixedPoint(solver_kwargs=dict(history_dtype='int8'))
    with pytest.raises(ValueError, match="'history_dtype' is not accepted by the 'anderson'"):
        DEQFixedPoint(solver='anderson', solver_kwargs=dict(history_dtype='bfloat16'))


@pytest.mark.parametrize('solver', ALL_SOLVERS)
def test_inplace_compaction_matches_copies(recorder, solver, monkeypatch):
    # A linear map with per-sample scales: samples stop at different steps,
    # so the state is compacted several times.
    dim = 12
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=_gen(2), dtype=F64))
    a = q @ torch.diag(torch.linspace(0.3, 0.85, dim, dtype=F64)) @ q.T
    v = torch.randn(dim, generator=_gen(3), dtype=F64)
    x = torch.stack([s * v for s in (1e-6, 1.0, 1e-3, 0.0, 1e-1, 1e-4)])

    def compact_by_copies(self, keep, *state, borrowed=()):
        # The reference: a fresh copy of the kept rows of every state tensor.
        if bool(keep.all()):
            return state
        self.index = self.index[keep]
        return tuple(t[keep] for t in state)

    results = []
    for by_copies in (True, False):
        with monkeypatch.context() as patch:
            if by_copies:
                patch.setattr(solvers_mod._ActiveSet, 'compact', compact_by_copies)
            func = recorder(lambda z, index: z @ a.T + x[index])
            with torch.no_grad():
                results.append(SOLVERS[solver](func, torch.zeros_like(x), max_iter=200,
                                               tol=1e-9, stop_mode='abs'))
        assert len(set(func.rows)) > 2  # several compactions happened
    (z0, s0), (z1, s1) = results
    torch.testing.assert_close(z1, z0, rtol=0, atol=0)
    assert torch.equal(s0.nstep, s1.nstep)


@pytest.mark.parametrize('solver', ALL_SOLVERS)
def test_compaction_leaves_the_callers_tensors_alone(solver):
    # func returns (a view of) its input for the samples that are done at
    # once: in-place compaction must not write into z0 or x.
    x = torch.tensor([[0.0, 0.0], [1.0, 2.0], [0.0, 0.0], [3.0, 1.0]], dtype=F64)
    z0 = torch.tensor([[0.0, 0.0], [5.0, 5.0], [0.0, 0.0], [7.0, 7.0]], dtype=F64)
    x_copy, z0_copy = x.clone(), z0.clone()

    def func(z, index):
        # F(z) = z/2 + x: sample rows 0 and 2 are fixed points from the start.
        return z * 0.5 + x[index]

    with torch.no_grad():
        SOLVERS[solver](func, z0, max_iter=30, tol=1e-10, stop_mode='abs')
        SOLVERS[solver](lambda z, index: z, z0, max_iter=3, tol=1e-10)
    assert torch.equal(x, x_copy)
    assert torch.equal(z0, z0_copy)


def test_history_allocation_is_bounded_by_the_steps_taken():
    # max_iter evaluations make max_iter - 1 Broyden updates: no more slots.
    seen = []
    original = torch.Tensor.new_empty

    def spy(self, *size, **kwargs):
        out = original(self, *size, **kwargs)
        seen.append(tuple(out.shape))
        return out

    z0 = torch.zeros(2, 5, dtype=F64)
    torch.Tensor.new_empty = spy
    try:
        broyden(lambda z, i: 0.5 * z + 1, z0, max_iter=6, tol=1e-30)
        broyden(lambda z, i: 0.5 * z + 1, z0, max_iter=6, tol=1e-30, memory=3)
    finally:
        torch.Tensor.new_empty = original
    assert (2, 5, 5) in seen and (2, 3, 5) in seen
