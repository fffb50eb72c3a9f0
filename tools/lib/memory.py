"""This process's memory: resident memory from Linux's ``/proc/self``, and CUDA's allocator.

A training step's peak memory on the CPU is measured as the peak RSS
(``VmHWM``) after resetting it, minus the RSS before the step; see
:func:`tools.lib.benchmark.ifr_cost_head.head_memory_worker`. On a CUDA
device it is the caching allocator's peak of allocated bytes during the step,
minus what was allocated before (:func:`cuda_peak_during`).
"""
import os
from typing import Callable, Tuple

import torch

MIB = 1 << 20


def current_rss() -> int:
    """The resident set size now, in bytes."""
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def reset_peak_rss() -> None:
    """Reset the peak RSS (``VmHWM``) to the current RSS.

    Raises:
        OSError: Where ``/proc/self/clear_refs`` is missing or not writable
            (not Linux, or a kernel without it).
    """
    # Writing 5 to clear_refs is what resets VmHWM (proc(5)).
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


def peak_rss() -> int:
    """The peak RSS (``VmHWM``) since start-up or the last reset, in bytes."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) * 1024
    raise RuntimeError('no VmHWM in /proc/self/status')


def cuda_peak_during(fn: Callable[[], object], device) -> Tuple[object, int]:
    """Call ``fn`` and measure the CUDA memory it allocated at its peak.

    Args:
        fn: Called without arguments.
        device: The CUDA device ``fn`` allocates on.

    Returns:
        tuple: ``fn``'s result and the peak of bytes allocated during the
        call above those allocated before it (tensors alive before the call,
        e.g. weights and inputs, excluded; what the call keeps, e.g.
        gradients, included).
    """
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    result = fn()
    torch.cuda.synchronize(device)
    return result, torch.cuda.max_memory_allocated(device) - before
