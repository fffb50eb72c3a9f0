"""Wall-clock measurements and the machine they were taken on."""
import os
import platform
import statistics
import time
from typing import Callable, Dict, List, Tuple

import torch
from torch import nn


def machine() -> Dict:
    """What a timing depends on: CPU model, cores, torch, threads and load.

    Returns:
        dict: ``cpu`` (model name from ``/proc/cpuinfo`` where there is one,
        else :func:`platform.processor`), ``logical_cpus``, ``torch``
        (version), ``threads`` (torch's intra-op threads now) and
        ``load_average`` (1, 5 and 15 minutes; ``None`` where the OS has
        none).
    """
    cpu = platform.processor()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if 'model name' in line)
    except (OSError, StopIteration):
        pass
    return dict(
        cpu=cpu,
        logical_cpus=os.cpu_count(),
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        load_average=os.getloadavg() if hasattr(os, 'getloadavg') else None)


def median_time(fn: Callable[[], object], repeats: int) -> Tuple[float, List[float]]:
    """Call ``fn`` ``repeats`` times and time each call.

    No warm-up call is made: callers that need one make it themselves (the
    benchmarks interleave their rows, one call per row and repeat).

    Args:
        fn: Called without arguments; its result is discarded.
        repeats: Number of timed calls, at least 1.

    Returns:
        tuple: The median wall time in seconds and the list of all
        ``repeats`` wall times, in call order.
    """
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), runs


class MaskHeadTimer:
    """Wall time spent inside a module's forward (forward pre/post hooks).

    The hooks stay registered for the module's lifetime; set :attr:`total`
    to 0 before the span to measure.

    Args:
        module: The module to time, typically a detector's mask head.

    Attributes:
        total (float): Seconds spent in ``module``'s forward calls since
            construction or the last reset.
    """

    def __init__(self, module: nn.Module) -> None:
        self.total = 0.0
        self._start = None
        module.register_forward_pre_hook(self._pre)
        module.register_forward_hook(self._post)

    def _pre(self, *_):
        self._start = time.perf_counter()

    def _post(self, *_):
        self.total += time.perf_counter() - self._start
