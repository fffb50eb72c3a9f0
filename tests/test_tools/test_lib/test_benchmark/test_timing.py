"""``tools.lib.benchmark.timing``: medians of timed calls, the machine, forward timers."""
import pytest
import torch
from torch import nn

from tools.lib.benchmark import timing


@pytest.fixture
def clock(monkeypatch):
    """A ``perf_counter`` that returns the listed instants, in turn."""

    def install(*instants):
        ticks = iter(instants)
        monkeypatch.setattr(timing.time, 'perf_counter', lambda: next(ticks))

    return install


def test_median_time_is_the_median_of_the_calls_in_order(clock):
    # Calls take 1, 5, 2 and 10 s: median 3.5 (even count: mean of the middle two).
    clock(0.0, 1.0, 10.0, 15.0, 20.0, 22.0, 30.0, 40.0)
    calls = []
    median, runs = timing.median_time(lambda: calls.append(1), 4)
    assert runs == [1.0, 5.0, 2.0, 10.0]
    assert median == 3.5
    assert len(calls) == 4


def test_median_time_of_one_call_is_that_call():
    median, runs = timing.median_time(lambda: sum(range(1000)), 1)
    assert len(runs) == 1 and median == runs[0] > 0


def test_machine_describes_the_torch_threads():
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        info = timing.machine()
    finally:
        torch.set_num_threads(previous)
    assert set(info) == {'cpu', 'logical_cpus', 'torch', 'threads', 'load_average'}
    assert info['threads'] == 1 and info['torch'] == torch.__version__
    assert isinstance(info['cpu'], str)


def test_mask_head_timer_counts_only_time_inside_forward(clock):
    module = nn.Identity()
    timer = timing.MaskHeadTimer(module)
    # Forward 1 from t=1 to t=3, forward 2 from t=10 to t=10.5; the time
    # between the calls is not the module's.
    clock(1.0, 3.0, 10.0, 10.5)
    module(torch.zeros(1))
    module(torch.zeros(1))
    assert timer.total == 2.5
    timer.total = 0.0
    clock(0.0, 0.25)
    module(torch.zeros(1))
    assert timer.total == 0.25
