"""``mmifr.utils.benchmark.memory``: the RSS and its resettable peak."""
import os.path as osp

import pytest
import torch

from mmifr.utils.benchmark.memory import MIB, current_rss, peak_rss, reset_peak_rss

pytestmark = pytest.mark.skipif(not osp.exists('/proc/self/status'), reason='needs Linux /proc')


def _touch(mib):
    # Larger than glibc's biggest dynamic mmap threshold (32 MiB): mmap-ed,
    # so freeing it lowers the RSS at once.
    t = torch.ones(mib * MIB // 4, dtype=torch.float32)
    del t


def test_peak_follows_an_allocation_and_reset_forgets_it():
    try:
        reset_peak_rss()
    except OSError:
        pytest.skip('/proc/self/clear_refs is not writable here')
    base = current_rss()
    assert base > 0 and peak_rss() >= base - MIB
    _touch(64)
    after = current_rss()
    assert peak_rss() - after > 48 * MIB  # the 64 MiB are gone, the peak keeps them
    reset_peak_rss()
    assert peak_rss() - current_rss() < 16 * MIB
