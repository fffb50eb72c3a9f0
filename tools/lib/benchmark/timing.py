"""Wall-clock measurements and the machine they were taken on.

On a CUDA device a timing is read off CUDA events recorded on the current
stream around the call, after the device has finished earlier work (the
host only queues kernels: its clock would measure the queueing).
"""
import os
import platform
import statistics
import time
from typing import Callable, Dict, List, Tuple

import torch
from torch import nn


def machine(device: str = 'cpu') -> Dict:
    """What a timing depends on: CPU model, cores, torch, threads and load.

    Args:
        device: The device measured on; a CUDA device adds ``gpu`` (its
            name), ``cuda`` (torch's CUDA version) and ``gpu_memory_gib``.

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
    info = dict(
        cpu=cpu,
        logical_cpus=os.cpu_count(),
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        load_average=os.getloadavg() if hasattr(os, 'getloadavg') else None)
    if torch.device(device).type == 'cuda':
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, cuda=torch.version.cuda,
                    gpu_memory_gib=round(props.total_memory / 2**30, 1))
    return info


def _on_cuda(device) -> bool:
    return torch.device(device).type == 'cuda'


def _cuda_seconds(fn: Callable[[], object], device) -> float:
    torch.cuda.synchronize(device)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1000


def median_time(fn: Callable[[], object], repeats: int,
                device: str = 'cpu') -> Tuple[float, List[float]]:
    """Call ``fn`` ``repeats`` times and time each call.

    No warm-up call is made: callers that need one make it themselves (the
    benchmarks interleave their rows, one call per row and repeat).

    Args:
        fn: Called without arguments; its result is discarded.
        repeats: Number of timed calls, at least 1.
        device: Where ``fn`` computes; on a CUDA device each call is timed
            with CUDA events, from an idle device to the end of its work.

    Returns:
        tuple: The median wall time in seconds and the list of all
        ``repeats`` wall times, in call order.
    """
    runs = []
    for _ in range(repeats):
        if _on_cuda(device):
            runs.append(_cuda_seconds(fn, device))
            continue
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), runs


class MaskHeadTimer:
    """Time spent inside a module's forward (forward pre/post hooks).

    The hooks stay registered for the module's lifetime; set :attr:`total`
    to 0 before the span to measure. On a CUDA device the hooks record CUDA
    events, read (after the device has caught up) when :attr:`total` is.

    Args:
        module: The module to time, typically a detector's mask head.
        device: Where the module computes.

    Attributes:
        total (float): Seconds spent in ``module``'s forward calls since
            construction or the last reset.
    """

    def __init__(self, module: nn.Module, device: str = 'cpu') -> None:
        self.cuda = _on_cuda(device)
        self._total = 0.0
        self._start = None
        self._events: List[Tuple] = []
        module.register_forward_pre_hook(self._pre)
        module.register_forward_hook(self._post)

    @property
    def total(self) -> float:
        if self._events:
            self._events[-1][1].synchronize()
            self._total += sum(a.elapsed_time(b) for a, b in self._events) / 1000
            self._events = []
        return self._total

    @total.setter
    def total(self, value: float) -> None:
        self._events = []
        self._total = value

    def _pre(self, *_):
        if self.cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._start = time.perf_counter()

    def _post(self, *_):
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self._events.append((self._start, end))
        else:
            self._total += time.perf_counter() - self._start


def add_ratios(res: Dict, stock: Dict, names: Dict[str, str]) -> None:
    """Set ``res[f'{name}_ratio'] = res[metric] / stock[metric]`` for each
    ``metric: name`` of ``names`` that both rows have. A stock value of 0 (a
    tiny step that did not move the peak RSS) gives no ratio."""
    for metric, name in names.items():
        if metric in res and stock.get(metric):
            res[f'{name}_ratio'] = res[metric] / stock[metric]
