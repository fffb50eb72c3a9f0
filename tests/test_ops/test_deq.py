"""Tests of the deep-equilibrium op in :mod:`mmifr.ops.deq`.

Gradients are checked in float64 against two independent references: a dense
solve of the implicit-function-theorem system built from the full Jacobian,
and plain autograd through an iteration run to convergence.
"""
import pytest
import torch
from torch import nn

from mmifr.ops import DEQFixedPoint, DEQFunction, DEQStats, deq_fixed_point
from mmifr.ops.solvers import SOLVERS

F64 = torch.float64
ALL_SOLVERS = sorted(SOLVERS)
# Solves far below the gradient tolerance, so that the references differ only
# by rounding.
EXACT = dict(max_iter=200, tol=1e-13, stop_mode='abs', backward_max_iter=200, backward_tol=1e-13)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _make(kind, tanh_block, conv_block, batch=3, seed=0):
    """A block and an injection ``x`` (requiring grad) of the given kind."""
    if kind == 'tanh':
        block = tanh_block(dim=6, contraction=0.6, seed=seed)
        x = torch.randn(batch, 6, generator=_gen(seed + 1), dtype=F64)
    else:
        block = conv_block(channels=2, contraction=0.6, seed=seed)
        x = torch.randn(batch, 2, 4, 4, generator=_gen(seed + 1), dtype=F64)
    return block, x.requires_grad_()


def _rel_err(actual, expected):
    return ((actual - expected).norm() / expected.norm()).item()


def _dense_ift_grads(block, x, h_star, grad_out):
    """``dL/d(x, theta)`` from the IFT with a dense solve.

    With ``J = df/dh`` at ``h*`` (the whole batch as one vector), the adjoint
    is ``g = (I - J)^-T dL/dh*`` and ``dL/d(.) = g df/d(.)``.
    """
    h_star = h_star.detach()
    size = h_star.numel()
    jac = torch.autograd.functional.jacobian(lambda h: block(h, x.detach()), h_star)
    jac = jac.reshape(size, size)
    eye = torch.eye(size, dtype=jac.dtype)
    adjoint = torch.linalg.solve((eye - jac).T, grad_out.reshape(size))
    h = h_star.clone().requires_grad_()
    return torch.autograd.grad(block(h, x), [x, *block.parameters()], adjoint.view_as(h_star))


@pytest.mark.parametrize('kind', ['tanh', 'conv'])
@pytest.mark.parametrize('solver', ALL_SOLVERS)
def test_ift_gradient_matches_dense_solve(tanh_block, conv_block, kind, solver):
    block, x = _make(kind, tanh_block, conv_block)
    params = list(block.parameters())
    h, stats = deq_fixed_point(block, x, params=params, solver=solver, **EXACT)
    assert stats.forward.converged.all()
    grad_out = torch.randn(h.shape, generator=_gen(5), dtype=F64)
    grads = torch.autograd.grad(h, [x, *params], grad_out)
    assert stats.backward is not None and stats.backward.converged.all()
    expected = _dense_ift_grads(block, x, h, grad_out)
    for name, actual, ref in zip(['x', *(n for n, _ in block.named_parameters())], grads, expected):
        assert _rel_err(actual, ref) < 1e-6, name


@pytest.mark.parametrize('kind', ['tanh', 'conv'])
def test_ift_gradient_matches_unrolled_autograd(tanh_block, conv_block, kind):
    block, x = _make(kind, tanh_block, conv_block)
    params = list(block.parameters())
    grad_out = torch.randn(x.shape, generator=_gen(6), dtype=F64)
    h, _ = deq_fixed_point(block, x, params=params, **EXACT)
    grads = torch.autograd.grad(h, [x, *params], grad_out)
    # Contraction 0.6: 0.6**100 ~ 1e-22, far below the tolerance.
    h_ref = torch.zeros_like(x)
    for _ in range(100):
        h_ref = block(h_ref, x)
    expected = torch.autograd.grad(h_ref, [x, *params], grad_out)
    torch.testing.assert_close(h, h_ref, rtol=0, atol=1e-11)
    for actual, ref in zip(grads, expected):
        assert _rel_err(actual, ref) < 1e-6


def test_gradcheck(tanh_block):
    block = tanh_block(dim=3, contraction=0.5)
    x = torch.randn(2, 3, generator=_gen(7), dtype=F64, requires_grad=True)
    weight, inject, bias = (p.detach().clone().requires_grad_() for p in block.parameters())

    def fn(x, weight, inject, bias):
        # gradcheck perturbs the inputs in place, so the block reads them here.
        def func(h, x):
            return torch.tanh(h @ weight.T + x @ inject.T + bias)

        h, _ = deq_fixed_point(
            func,
            x,
            params=[weight, inject, bias],
            solver='broyden',
            max_iter=100,
            tol=1e-12,
            backward_max_iter=100,
            backward_tol=1e-12)
        return h

    assert torch.autograd.gradcheck(fn, (x, weight, inject, bias), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_ift_with_partial_requires_grad(tanh_block):
    block, x = _make('tanh', tanh_block, None)
    grad_out = torch.randn(x.shape, generator=_gen(8), dtype=F64)
    h, _ = deq_fixed_point(block, x, params=list(block.parameters()), **EXACT)
    reference = torch.autograd.grad(h, [x, block.weight], grad_out)

    # Only parameters: x is a constant.
    block.inject.requires_grad_(False)
    h, _ = deq_fixed_point(block, x.detach(), params=list(block.parameters()), **EXACT)
    grad_w, = torch.autograd.grad(h, [block.weight], grad_out)
    assert _rel_err(grad_w, reference[1]) < 1e-9
    # Only x: no parameters given.
    h, _ = deq_fixed_point(block, x, **EXACT)
    grad_x, = torch.autograd.grad(h, [x], grad_out)
    assert _rel_err(grad_x, reference[0]) < 1e-9


def test_no_grad_builds_no_graph(tanh_block):
    block, x = _make('tanh', tanh_block, None)
    with torch.no_grad():
        h, stats = deq_fixed_point(block, x, params=list(block.parameters()))
    assert not h.requires_grad and h.grad_fn is None
    assert stats.backward is None


def test_backward_stats_are_per_sample(tanh_block):
    block, x = _make('tanh', tanh_block, None, batch=4)
    h, stats = deq_fixed_point(block, x, params=list(block.parameters()))
    assert stats.backward is None
    (h * torch.arange(4, dtype=F64)[:, None]).sum().backward()
    assert stats.backward.nstep.shape == (4, )
    # Sample 0 receives a zero gradient: its adjoint is solved at once.
    assert stats.backward.nstep[0] == 1 and stats.backward.converged.all()
    assert set(stats.summary()) >= {'fwd_nstep', 'bwd_nstep', 'bwd_converged'}


@pytest.mark.parametrize('solver', ALL_SOLVERS)
def test_batched_solve_equals_per_sample_solves(conv_block, solver):
    """Rows leave the active set at different times; ``x`` must follow them."""
    block = conv_block(channels=2, contraction=0.6)
    x = torch.randn(4, 2, 4, 4, generator=_gen(9), dtype=F64)
    x[1] *= 1e-3  # converges much sooner in 'abs' mode
    x[3] *= 10
    opts = dict(solver=solver, max_iter=100, tol=1e-10, stop_mode='abs')
    with torch.no_grad():
        h, stats = deq_fixed_point(block, x, **opts)
        singles = [deq_fixed_point(block, x[i:i + 1], **opts)[0] for i in range(4)]
    assert len(set(stats.forward.nstep.tolist())) > 1
    torch.testing.assert_close(h, torch.cat(singles), rtol=0, atol=1e-9)


def test_h0_defaults_to_zeros(conv_block, recorder):
    block = conv_block()
    x = torch.randn(2, 2, 4, 4, generator=_gen(10), dtype=F64)
    func = recorder(block)
    with torch.no_grad():
        h, _ = deq_fixed_point(func, x, tol=1e-10)
    torch.testing.assert_close(func.first_input(), torch.zeros_like(x), rtol=0, atol=0)
    # An explicit guess is where the solve starts, and a contractive block
    # reaches the same fixed point from it.
    h0 = torch.randn(x.shape, generator=_gen(11), dtype=F64)
    func = recorder(block)
    with torch.no_grad():
        h_from_h0, _ = deq_fixed_point(func, x, h0=h0, tol=1e-10)
    torch.testing.assert_close(func.first_input(), h0, rtol=0, atol=0)
    torch.testing.assert_close(h_from_h0, h, rtol=0, atol=1e-8)


@pytest.mark.parametrize('solver', ALL_SOLVERS)
def test_stats_describe_the_returned_fixed_point(conv_block, solver):
    block = conv_block()
    x = torch.randn(3, 2, 4, 4, generator=_gen(12), dtype=F64)
    with torch.no_grad():
        # Too few steps to converge: the returned iterate is the best seen.
        h, stats = deq_fixed_point(block, x, solver=solver, max_iter=3, tol=1e-12)
        fh = block(h, x)
    abs_res = (fh - h).flatten(1).norm(dim=1)
    torch.testing.assert_close(stats.forward.abs_residual, abs_res, rtol=1e-9, atol=0)
    torch.testing.assert_close(
        stats.forward.rel_residual, abs_res / fh.flatten(1).norm(dim=1), rtol=1e-6, atol=0)
    assert (stats.forward.nstep == 3).all() and not stats.forward.converged.any()


@pytest.mark.parametrize('grad', ['ift', 'phantom'])
def test_empty_batch(conv_block, grad):
    block = conv_block()
    x = torch.zeros(0, 2, 4, 4, dtype=F64, requires_grad=True)
    params = list(block.parameters())
    h, stats = deq_fixed_point(block, x, params=params, grad=grad)
    assert h.shape == x.shape
    assert stats.forward.batch_size == 0 and stats.summary() == {}
    h.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    for param in params:
        assert param.grad is not None, 'DDP needs every parameter in the graph'
        assert param.grad.shape == param.shape and not param.grad.any()


def test_empty_batch_module(conv_block):
    block, deq = conv_block(), DEQFixedPoint()
    h = deq(block, torch.zeros(0, 2, 4, 4, dtype=F64), params=list(block.parameters()))
    h.sum().backward()
    assert all(p.grad is not None and not p.grad.any() for p in block.parameters())
    assert deq.last_stats.forward.batch_size == 0


class _Bf16Probe(nn.Module):
    """A float32 conv block that records the dtype of its input and output."""

    def __init__(self):
        super().__init__()
        gen = _gen(13)
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(0.05 * torch.randn(self.conv.weight.shape, generator=gen))
        self.seen = []

    def forward(self, h, x):
        conv = self.conv(h)
        self.seen.append((h.dtype, conv.dtype))
        return torch.tanh(conv + x)


@pytest.mark.parametrize('solver', ALL_SOLVERS)
def test_autocast_bf16(solver):
    block = _Bf16Probe()
    x = torch.randn(3, 4, 6, 6, generator=_gen(14), requires_grad=True)
    params = list(block.parameters())
    with torch.autocast('cpu', dtype=torch.bfloat16):
        h, stats = deq_fixed_point(block, x, params=params, solver=solver, tol=1e-2)
        loss = h.float().square().sum()
    # Autocast really was on (the conv ran in bf16), but the iterates the
    # solver handed to the block stayed float32.
    assert block.seen and all(out == torch.bfloat16 for _, out in block.seen)
    assert all(inp == torch.float32 for inp, _ in block.seen)
    assert stats.forward.abs_residual.dtype == torch.float32
    assert stats.forward.rel_residual.dtype == torch.float32
    assert h.dtype == torch.float32 and torch.isfinite(h).all()
    loss.backward()
    assert stats.backward.abs_residual.dtype == torch.float32
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() and p.grad.any() for p in params)

    # bf16 gradients point where the float32 ones do.
    grads_bf16 = [x.grad.clone(), *(p.grad.clone() for p in params)]
    x.grad = None
    block.zero_grad()
    h32, _ = deq_fixed_point(block, x, params=params, solver=solver, tol=1e-2)
    h32.square().sum().backward()
    for g16, g32 in zip(grads_bf16, [x.grad, *(p.grad for p in params)]):
        assert torch.cosine_similarity(g16.flatten(), g32.flatten(), dim=0) > 0.99


@pytest.mark.parametrize('solver', ALL_SOLVERS)
def test_autocast_does_not_reach_solver_arithmetic(solver):
    """A block of elementwise ops is not autocast, so only the solver's own
    einsum/bmm/solve could differ under autocast; they must stay float32."""
    weight = 0.5 * torch.rand(4, 6, 6, generator=_gen(24))
    x = torch.randn(3, 4, 6, 6, generator=_gen(25))

    def func(h, x):
        return torch.tanh(weight * h.roll(1, dims=2) + x)

    with torch.no_grad():
        expected, _ = deq_fixed_point(func, x, solver=solver, tol=1e-5)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            h, _ = deq_fixed_point(func, x, solver=solver, tol=1e-5)
    torch.testing.assert_close(h, expected, rtol=0, atol=1e-6)


def test_bf16_input_keeps_fp32_solver_state():
    block = _Bf16Probe().to(torch.bfloat16)
    x = torch.randn(2, 4, 6, 6, generator=_gen(15)).to(torch.bfloat16)
    with torch.no_grad():
        h, stats = deq_fixed_point(block, x, tol=1e-2)
    assert h.dtype == torch.bfloat16 and torch.isfinite(h).all()
    assert stats.forward.abs_residual.dtype == torch.float32


@pytest.mark.parametrize('solver', ALL_SOLVERS)
def test_nonfinite_sample_returns_best_finite_iterate(tanh_block, solver):
    block = tanh_block(dim=6)
    x = torch.randn(3, 6, generator=_gen(16), dtype=F64)
    calls = [0]

    def func(h, x_active):
        calls[0] += 1
        out = block(h, x_active)
        if calls[0] >= 3 and out.shape[0] == 3:
            out = out.clone()
            out[1] = float('nan')
        return out

    with torch.no_grad():
        h, stats = deq_fixed_point(func, x, solver=solver, max_iter=50, tol=1e-10)
    assert stats.forward.nonfinite.tolist() == [False, True, False]
    assert stats.forward.converged.tolist() == [True, False, True]
    assert torch.isfinite(h).all()
    assert stats.summary()['fwd_nonfinite'] == 1.0


_BAD_ARGUMENTS = [
    (dict(solver='newton'), r"solver='newton'.*allowed values.*anderson.*broyden.*unroll"),
    (dict(max_iter=0), 'max_iter'),
    (dict(max_iter=-2), 'max_iter'),
    (dict(max_iter=2.5), 'max_iter'),
    (dict(tol=0.0), 'tol'),
    (dict(tol=-1e-3), 'tol'),
    (dict(stop_mode='max'), r"stop_mode='max'.*allowed values.*abs.*rel"),
    (dict(grad='exact'), r"grad='exact'.*allowed values.*ift.*phantom"),
    (dict(backward_solver='newton'),
     r"backward_solver='newton'.*allowed values.*anderson.*broyden"),
    (dict(backward_max_iter=0), 'backward_max_iter'),
    (dict(backward_tol=0.0), 'backward_tol'),
    (dict(phantom_steps=0), 'phantom_steps'),
    (dict(phantom_damping=0.0), 'phantom_damping'),
    (dict(phantom_damping=1.5), 'phantom_damping'),
    (dict(solver='unroll', tol=-1.0), 'tol'),
]


@pytest.mark.parametrize('kwargs,message', _BAD_ARGUMENTS)
def test_bad_arguments(kwargs, message):
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=message):
        deq_fixed_point(lambda h, x: h, x, **kwargs)
    # The module refuses them when it is built, not at its first forward.
    with pytest.raises(ValueError, match=message):
        DEQFixedPoint(**kwargs)
    # ...and when they come as per-call overrides.
    with pytest.raises(ValueError, match=message):
        DEQFixedPoint()(lambda h, x: h, x, **kwargs)


def test_unroll_is_plain_autograd(conv_block):
    block = conv_block(contraction=0.9)
    x = torch.randn(2, 2, 4, 4, generator=_gen(17), dtype=F64, requires_grad=True)
    params = list(block.parameters())
    h, stats = deq_fixed_point(block, x, params=params, solver='unroll', max_iter=4)
    grad_out = torch.randn(x.shape, generator=_gen(18), dtype=F64)
    grads = torch.autograd.grad(h, [x, *params], grad_out)

    h_ref = torch.zeros_like(x)
    for _ in range(4):
        h_ref = block(h_ref, x)
    expected = torch.autograd.grad(h_ref, [x, *params], grad_out)
    torch.testing.assert_close(h, h_ref, rtol=0, atol=0)
    for actual, ref in zip(grads, expected):
        torch.testing.assert_close(actual, ref, rtol=0, atol=0)
    assert stats.forward.nstep.tolist() == [4, 4] and stats.forward.nfev == 4
    # Four steps do not converge: the unrolled output is not the fixed point.
    h_star, _ = deq_fixed_point(block, x.detach(), **EXACT)
    assert (h - h_star).abs().max() > 1e-4


def test_phantom_gradient_approximates_ift(tanh_block):
    block = tanh_block(dim=6, contraction=0.1, seed=3)
    x = torch.randn(3, 6, generator=_gen(19), dtype=F64, requires_grad=True)
    params = list(block.parameters())
    grad_out = torch.randn(x.shape, generator=_gen(20), dtype=F64)

    def grads(**kwargs):
        h, stats = deq_fixed_point(block, x, params=params, **EXACT, **kwargs)
        return torch.autograd.grad(h, [x, *params], grad_out), stats

    exact, _ = grads(grad='ift')
    errors = {}
    for steps in (1, 4):
        approx, stats = grads(grad='phantom', phantom_steps=steps)
        assert stats.backward is None
        errors[steps] = max(_rel_err(a, e) for a, e in zip(approx, exact))
    # The error shrinks like contraction ** steps.
    assert errors[4] < 1e-3
    assert errors[4] < 1e-2 * errors[1]
    damped, _ = grads(grad='phantom', phantom_steps=4, phantom_damping=0.5)
    assert all(torch.isfinite(g).all() for g in damped)


def _saved_bytes(fn):
    """Tensors (count, bytes) that autograd saves for backward while ``fn`` runs."""
    saved = []

    def pack(tensor):
        saved.append(tensor.numel() * tensor.element_size())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = fn()
    return len(saved), sum(saved), out


@pytest.mark.parametrize('solver', ALL_SOLVERS)
def test_ift_memory_does_not_grow_with_max_iter(conv_block, solver):
    block = conv_block(contraction=0.95)
    x = torch.randn(2, 2, 4, 4, generator=_gen(21), dtype=F64, requires_grad=True)
    params = list(block.parameters())
    noise = _gen(22)

    def func(h, x):
        # Fresh noise at every call keeps every solver busy until max_iter.
        return block(h, x) + 1e-3 * torch.randn(h.shape, generator=noise, dtype=h.dtype)

    footprint = {}
    for max_iter in (5, 50):
        count, size, (h, stats) = _saved_bytes(lambda: deq_fixed_point(
            func, x, params=params, solver=solver, max_iter=max_iter, tol=1e-12))
        assert (stats.forward.nstep == max_iter).all()
        assert isinstance(h.grad_fn, DEQFunction._backward_cls)
        footprint[max_iter] = (count, size)
        h.sum().backward()
    assert footprint[5] == footprint[50]
    # The probe does see graphs that grow: the unrolled block saves per step.
    unrolled = [
        _saved_bytes(lambda: deq_fixed_point(block, x, params=params, solver='unroll', max_iter=n))
        [:2] for n in (5, 50)
    ]
    assert unrolled[1][0] > 5 * unrolled[0][0]


def test_module_stats_and_overrides(conv_block):
    block = conv_block()
    params = list(block.parameters())
    deq = DEQFixedPoint(solver='anderson', max_iter=30, tol=1e-8)
    assert deq.last_stats is None
    assert "solver='anderson'" in repr(deq) and 'max_iter=30' in repr(deq)
    assert not list(deq.parameters()) and not deq.state_dict()
    x = torch.randn(3, 2, 4, 4, generator=_gen(23), dtype=F64, requires_grad=True)

    h = deq(block, x, params=params)
    stats = deq.last_stats
    assert isinstance(stats, DEQStats)
    assert stats.forward.nstep.shape == (3, ) and stats.forward.converged.all()
    assert stats.backward is None
    h.sum().backward()
    assert stats.backward is not None and stats.backward.nstep.shape == (3, )
    assert x.grad is not None and all(p.grad is not None for p in params)

    # An override applies to one call only.
    with torch.no_grad():
        deq(block, x, max_iter=2)
        assert (deq.last_stats.forward.nstep <= 2).all()
        assert deq.last_stats is not stats
        deq(block, x)
    assert deq.options['max_iter'] == 30
    assert deq.last_stats.forward.nstep.max() > 2

    # So does switching to the unrolled solver, e.g. for a warm-up stage.
    h_unrolled = deq(block, x, params=params, solver='unroll', max_iter=3)
    assert h_unrolled.grad_fn is not None
    assert not isinstance(h_unrolled.grad_fn, DEQFunction._backward_cls)
    assert (deq.last_stats.forward.nstep == 3).all()
