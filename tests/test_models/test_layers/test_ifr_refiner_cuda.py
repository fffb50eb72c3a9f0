"""``IFRRefiner`` on CUDA, in every mode, against the same refiner on the CPU.

float64 makes the two devices' arithmetic agree to rounding, so outputs,
parameter gradients and the per-RoI step counts of the DEQ solve must match;
a float32 refiner (what trains) must agree to its solver tolerance.
"""
import copy

import pytest
import torch

from mmifr.models.layers import IFRRefiner

pytestmark = pytest.mark.cuda

C = 16  # channels: small, divisible by the 4 GroupNorm groups
#: (mode, refiner options, unroll warm-up steps): the three modes of the
#: paper's Table 6, the DEQ refiner in its unrolled warm-up phase, with a
#: learned initial guess, and with an input projection (in_channels != C).
CASES = {
    'deq': ('deq', {}, None),
    'unroll': ('unroll', dict(num_steps=3), None),
    'explicit': ('explicit', dict(num_steps=3), None),
    'deq, warm-up': ('deq', {}, 4),
    'deq, initializer': ('deq', dict(initializer=dict(type='FixedPointInitializer')), None),
    'deq, projection': ('deq', dict(in_channels=C + 2), None),
}


def _refiner(mode, options, dtype):
    torch.manual_seed(0)
    refiner = IFRRefiner(**{'in_channels': C, 'channels': C, 'mode': mode, **options})
    refiner.init_weights()
    if refiner.initializer is not None:
        # Its last conv starts at zero (the guess is H0 = 0): make it guess.
        torch.nn.init.normal_(refiner.initializer.expand.weight, std=0.1)
    return refiner.to(dtype)


def _train_step(refiner, x, upstream, device, warmup):
    refiner = copy.deepcopy(refiner).to(device).train()
    refiner.set_unroll_warmup(warmup)
    x = x.to(device).requires_grad_()
    h = refiner(x)
    loss = (h * upstream.to(device)).sum()
    for value in refiner.pop_aux_losses().values():
        loss = loss + value
    loss.backward()
    grads = {n: p.grad.cpu() for n, p in refiner.named_parameters() if p.grad is not None}
    stats = refiner.pop_stats()
    return h.detach().cpu(), x.grad.cpu(), grads, stats


@pytest.mark.parametrize('case', list(CASES))
def test_training_forward_backward_match_the_cpu(cuda_device, exact_cuda_math, case):
    mode, options, warmup = CASES[case]
    refiner = _refiner(mode, options, torch.float64)
    torch.manual_seed(1)
    x = torch.randn(6, refiner.in_channels, 9, 9, dtype=torch.float64)
    upstream = torch.randn(6, C, 9, 9, dtype=torch.float64)
    h_cpu, gx_cpu, grads_cpu, stats_cpu = _train_step(refiner, x, upstream, 'cpu', warmup)
    h_gpu, gx_gpu, grads_gpu, stats_gpu = _train_step(refiner, x, upstream, cuda_device, warmup)
    torch.testing.assert_close(h_gpu, h_cpu, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(gx_gpu, gx_cpu, rtol=1e-8, atol=1e-9)
    assert grads_gpu.keys() == grads_cpu.keys() and grads_cpu
    for name in grads_cpu:
        torch.testing.assert_close(grads_gpu[name], grads_cpu[name], rtol=1e-8, atol=1e-9,
                                   msg=lambda m: f'{name}: {m}')
    assert len(stats_gpu) == len(stats_cpu) == (0 if mode == 'explicit' else 1)
    for gpu, cpu in zip(stats_gpu, stats_cpu):
        assert gpu.forward.nstep.tolist() == cpu.forward.nstep.tolist()
        if mode == 'deq' and warmup is None:
            # The implicit backward ran, on the GPU too, with the same steps.
            assert gpu.backward.nstep.tolist() == cpu.backward.nstep.tolist()


@pytest.mark.parametrize('test_solver', [None, dict(tol=1e-2, output='fz'),
                                         dict(solver='unroll', max_iter=2)])
def test_eval_solve_matches_the_cpu(cuda_device, exact_cuda_math, test_solver):
    """Inference, with the RoI mask heads' test solve and a fixed-step one."""
    refiner = _refiner('deq', dict(test_solver=test_solver), torch.float64).eval()
    torch.manual_seed(2)
    x = torch.randn(5, C, 14, 14, dtype=torch.float64)
    with torch.no_grad():
        h_cpu = refiner(x)
        steps_cpu = refiner.pop_stats()[0].forward.nstep.tolist()
        gpu = copy.deepcopy(refiner).to(cuda_device)
        h_gpu = gpu(x.to(cuda_device)).cpu()
        steps_gpu = gpu.pop_stats()[0].forward.nstep.tolist()
    torch.testing.assert_close(h_gpu, h_cpu, rtol=1e-9, atol=1e-10)
    assert steps_gpu == steps_cpu
    if test_solver and test_solver.get('solver') == 'unroll':
        assert steps_gpu == [2] * 5


def test_float32_refiner_matches_the_cpu_to_the_solver_tolerance(cuda_device, exact_cuda_math):
    refiner = _refiner('deq', {}, torch.float32)
    torch.manual_seed(3)
    x = torch.randn(40, C, 14, 14)
    upstream = torch.randn_like(x)
    h_cpu, gx_cpu, _, _ = _train_step(refiner, x, upstream, 'cpu', None)
    h_gpu, gx_gpu, _, stats = _train_step(refiner, x, upstream, cuda_device, None)
    rel = (h_gpu - h_cpu).flatten(1).norm(dim=1) / h_cpu.flatten(1).norm(dim=1)
    assert float(rel.max()) < 1e-2  # the solve's tolerance is 1e-3 per RoI
    assert float((gx_gpu - gx_cpu).norm() / gx_cpu.norm()) < 2e-2
    assert stats[0].forward.abs_residual.dtype == torch.float32


def test_jacobian_regulariser_runs_on_cuda(cuda_device):
    """``jac_reg``'s Hutchinson probes are drawn on the refiner's device."""
    refiner = _refiner('deq', dict(jac_reg=dict(weight=0.5, num_probes=2)), torch.float32)
    refiner = refiner.to(cuda_device).train()
    x = torch.randn(4, C, 7, 7, device=cuda_device, requires_grad=True)
    h = refiner(x)
    losses = refiner.pop_aux_losses()
    assert set(losses) == {'loss_ifr_jac'}
    jac = losses['loss_ifr_jac']
    assert jac.device.type == cuda_device.type and bool(torch.isfinite(jac)) and float(jac) > 0
    (h.sum() + jac).backward()
    assert refiner.block.conv1.parametrizations.weight.original1.grad is not None
    assert refiner.pop_jacobian_estimates()[0] > 0
