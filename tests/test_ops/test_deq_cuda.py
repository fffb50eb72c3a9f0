"""The DEQ op on CUDA: forward solve and implicit backward against the CPU's.

In float64, with a contractive block and tight tolerances, the CPU and the GPU
iterate the same arithmetic up to rounding, so the fixed point, the per-sample
step counts and every gradient must agree to ~1e-10. A float32 solve of the
real IFR block (the training dtype) must agree to its tolerance.
"""
import copy

import pytest
import torch

from mmifr.models.layers import DoubleResidualBlock
from mmifr.ops import deq_fixed_point

pytestmark = pytest.mark.cuda

#: Every forward solver, and the unrolled (plain autograd) form.
SOLVERS = ('broyden', 'anderson', 'fixed_point', 'unroll')
#: Tolerances tight enough that both devices solve to machine precision.
TIGHT = dict(max_iter=80, tol=1e-11, backward_max_iter=80, backward_tol=1e-11)


def _run(block, x, upstream, device, **options):
    """Solve on ``device``; return the fixed point, grads (all on the CPU) and stats."""
    block = copy.deepcopy(block).to(device)
    x = x.detach().to(device).requires_grad_()
    h, stats = deq_fixed_point(block, x, params=list(block.parameters()), **options)
    (h * upstream.to(device)).sum().backward()
    assert h.device.type == device.type and stats.forward.nstep.device.type == device.type
    grads = [x.grad] + [p.grad for p in block.parameters()]
    return h.detach().cpu(), [g.cpu() for g in grads], stats


@pytest.mark.parametrize('solver', SOLVERS)
def test_solve_and_implicit_backward_match_the_cpu(conv_block, cuda_device, exact_cuda_math,
                                                   solver):
    torch.manual_seed(0)
    # A slow contraction and inputs of different sizes: samples stop at
    # different steps, so the GPU's per-sample stopping and compaction run.
    block = conv_block(channels=3, contraction=0.8)
    x = torch.randn(5, 3, 7, 7, dtype=torch.float64) * torch.tensor(
        [0.1, 0.5, 1.0, 2.0, 4.0], dtype=torch.float64).view(5, 1, 1, 1)
    upstream = torch.randn_like(x)
    options = dict(TIGHT, solver=solver, chunk_size=2)
    if solver == 'unroll':
        options['max_iter'] = 12
    h_cpu, grads_cpu, stats_cpu = _run(block, x, upstream, torch.device('cpu'), **options)
    h_gpu, grads_gpu, stats_gpu = _run(block, x, upstream, cuda_device, **options)
    torch.testing.assert_close(h_gpu, h_cpu, rtol=0, atol=1e-10)
    for g_gpu, g_cpu in zip(grads_gpu, grads_cpu):
        torch.testing.assert_close(g_gpu, g_cpu, rtol=1e-9, atol=1e-10)
    assert stats_gpu.forward.nstep.tolist() == stats_cpu.forward.nstep.tolist()
    if solver != 'unroll':
        assert bool(stats_gpu.forward.converged.all())
        assert len(set(stats_gpu.forward.nstep.tolist())) > 1  # per-sample stopping ran
        assert bool(stats_gpu.backward.converged.all())
        assert stats_gpu.backward.nstep.tolist() == stats_cpu.backward.nstep.tolist()


@pytest.mark.parametrize('output', ['z', 'fz'])
def test_phantom_gradient_and_fz_output_match_the_cpu(conv_block, cuda_device, exact_cuda_math,
                                                      output):
    torch.manual_seed(1)
    block = conv_block(channels=2, contraction=0.6)
    x = torch.randn(4, 2, 6, 6, dtype=torch.float64)
    upstream = torch.randn_like(x)
    options = dict(solver='broyden', max_iter=6, tol=1e-3, grad='phantom', phantom_steps=2,
                   phantom_damping=0.5, output=output)
    h_cpu, grads_cpu, _ = _run(block, x, upstream, torch.device('cpu'), **options)
    h_gpu, grads_gpu, _ = _run(block, x, upstream, cuda_device, **options)
    torch.testing.assert_close(h_gpu, h_cpu, rtol=0, atol=1e-10)
    for g_gpu, g_cpu in zip(grads_gpu, grads_cpu):
        torch.testing.assert_close(g_gpu, g_cpu, rtol=1e-9, atol=1e-10)


def test_float32_ifr_block_matches_the_cpu_to_the_tolerance(cuda_device, exact_cuda_math):
    """The real block in the training dtype, with the project's default solve."""
    torch.manual_seed(0)
    block = DoubleResidualBlock(channels=16, mid_channels=16)
    block.init_weights()
    x = torch.randn(70, 16, 14, 14)  # two chunks of 64
    upstream = torch.randn_like(x)
    options = dict(solver='broyden', max_iter=15, tol=1e-3, backward_max_iter=15,
                   solver_kwargs=dict(memory=5), backward_solver_kwargs=dict(memory=5),
                   chunk_size=64)
    h_cpu, grads_cpu, stats_cpu = _run(block, x, upstream, torch.device('cpu'), **options)
    h_gpu, grads_gpu, stats_gpu = _run(block, x, upstream, cuda_device, **options)
    # Both stop within tol (relative residual) of the same fixed point.
    scale = h_cpu.flatten(1).norm(dim=1)
    assert float(((h_gpu - h_cpu).flatten(1).norm(dim=1) / scale).max()) < 1e-2
    for g_gpu, g_cpu in zip(grads_gpu, grads_cpu):
        assert float((g_gpu - g_cpu).norm() / g_cpu.norm()) < 2e-2
    steps_gpu = stats_gpu.forward.nstep.float().mean()
    assert abs(float(steps_gpu - stats_cpu.forward.nstep.float().mean())) <= 1.0
    assert stats_gpu.forward.abs_residual.dtype == torch.float32


@pytest.mark.parametrize('solver', ['broyden', 'anderson'])
def test_ift_memory_does_not_grow_with_max_iter_on_cuda(real_cuda, solver):
    """The point of the implicit backward, read off CUDA's allocator.

    Training peak memory of the DEQ op stays flat from 5 to 30 forward steps
    (solver state only; no graph per step), while unrolling the same steps
    with autograd grows linearly.
    """
    torch.manual_seed(0)
    block = DoubleResidualBlock(channels=32, mid_channels=32).to(real_cuda)
    x = torch.randn(64, 32, 14, 14, device=real_cuda)

    def peak(**options) -> int:
        xx = x.clone().requires_grad_()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        h, _ = deq_fixed_point(block, xx, params=list(block.parameters()), **options)
        h.square().sum().backward()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base

    # tol=1e-12 is never reached: every solve runs to max_iter.
    ift = {n: peak(solver=solver, max_iter=n, tol=1e-12, backward_max_iter=n,
                   solver_kwargs=dict(memory=4), backward_solver_kwargs=dict(memory=4))
           for n in (5, 30)}
    unroll = {n: peak(solver='unroll', max_iter=n) for n in (5, 30)}
    # Differences, so that constants (cuDNN workspaces, the allocator's
    # rounding) cancel: each unrolled step keeps at least one activation of
    # x's size for the backward, an implicit solve none.
    x_bytes = x.numel() * x.element_size()
    assert unroll[30] - unroll[5] > 25 * x_bytes, unroll
    assert abs(ift[30] - ift[5]) < 2 * x_bytes, ift
