"""Timing and memory on CUDA: CUDA events measure the device's work, not the host's queueing."""
import pytest
import torch
from torch import nn

from tools.lib.benchmark import timing
from tools.lib.memory import MIB, cuda_peak_during

pytestmark = pytest.mark.cuda


def _busy(device, cycles=int(2e8)):
    # Keeps the GPU busy while the host returns at once (~0.1 s at ~2 GHz).
    torch.cuda._sleep(cycles)


def test_median_time_on_cuda_waits_for_the_device(real_cuda):
    torch.cuda.synchronize()
    host, _ = timing.median_time(lambda: _busy(real_cuda), 1)
    torch.cuda.synchronize()
    device, runs = timing.median_time(lambda: _busy(real_cuda), 3, real_cuda)
    assert len(runs) == 3
    assert device > 0.02 and device > 10 * host


def test_mask_head_timer_on_cuda(real_cuda):
    class Busy(nn.Module):
        def forward(self, x):
            _busy(real_cuda)
            return x

    module = Busy()
    timer = timing.MaskHeadTimer(module, real_cuda)
    module(torch.zeros(1, device=real_cuda))
    module(torch.zeros(1, device=real_cuda))
    first = timer.total
    assert first > 0.04
    timer.total = 0.0
    assert timer.total == 0.0
    module(torch.zeros(1, device=real_cuda))
    assert 0.3 * first < timer.total < 0.8 * first


def test_cuda_peak_during_counts_what_the_call_allocates(real_cuda):
    keep = torch.zeros(16 * MIB // 4, device=real_cuda)  # alive before: not counted

    def step():
        tmp = torch.ones(64 * MIB // 4, device=real_cuda)  # freed on return: counted
        return tmp.sum()

    result, peak = cuda_peak_during(step, real_cuda)
    assert float(result) == 64 * MIB // 4
    assert 64 * MIB <= peak < 66 * MIB
    del keep


def test_machine_names_the_gpu(real_cuda):
    info = timing.machine(str(real_cuda))
    assert info['gpu'] == torch.cuda.get_device_name(real_cuda)
    assert info['cuda'] == torch.version.cuda and info['gpu_memory_gib'] > 1
