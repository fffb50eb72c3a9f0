"""``tools.lib.memory``: the RSS and its resettable peak."""
import mmap
import os.path as osp

import pytest

from tools.lib.memory import MIB, current_rss, peak_rss, reset_peak_rss

pytestmark = pytest.mark.skipif(not osp.exists('/proc/self/status'), reason='needs Linux /proc')


def _touch(mib):
    # Fresh anonymous pages, written and unmapped: the RSS rises and falls at
    # once. A malloc-ed tensor could reuse pages an earlier test left resident.
    region = mmap.mmap(-1, mib * MIB)
    region.write(b'\x01' * (mib * MIB))
    region.close()


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
