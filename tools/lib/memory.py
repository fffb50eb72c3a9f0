"""This process's resident memory, from Linux's ``/proc/self``.

A training step's peak memory is measured as the peak RSS (``VmHWM``) after
resetting it, minus the RSS before the step; see
:func:`tools.lib.benchmark.ifr_cost_head.head_memory_worker`.
"""
import os

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
