"""Counting host-device synchronisations: where the host waits for the GPU.

A CUDA program runs fast while the host only queues work; each time Python
needs a value computed on the device (``bool(t)``, ``t.item()``,
``int(t)``, ``t.tolist()``) or a result whose size depends on the data
(``t.nonzero()``, ``t[mask]`` with a boolean mask), it waits until the GPU
has caught up, and the GPU then idles until the host queues more. A solver
that decides per step which samples continue pays such waits every step.

:class:`SyncCounter` counts them two ways:

- ``calls``: the calls of those Tensor operations, recorded by wrapping them
  on ``torch.Tensor`` for the duration of the block. It runs anywhere, the
  CPU included, where it counts the calls that *would* wait on a GPU.
- ``cuda``: on a CUDA device also the synchronising operations PyTorch
  itself reports (``torch.cuda.set_sync_debug_mode('warn')``), which covers
  whatever the wrapped list misses.
"""
import functools
import warnings
from typing import Optional

import torch

#: Tensor methods that hand a device value to Python (each waits for the device).
VALUE_METHODS = ('__bool__', 'item', 'tolist', '__int__', '__float__', '__index__', 'nonzero')
#: PyTorch's warning for each synchronising operation in sync debug mode.
_CUDA_SYNC_WARNING = 'called a synchronizing CUDA operation'


def _has_bool_mask(index) -> bool:
    items = index if isinstance(index, tuple) else (index, )
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool and i.dim() > 0
               for i in items)


class SyncCounter:
    """Count the host-device synchronisations inside a ``with`` block.

    Args:
        device: The device the block computes on; on a CUDA device PyTorch's
            own report is counted too (:attr:`cuda`).

    Attributes:
        calls (int): Calls of :data:`VALUE_METHODS`, ``torch.nonzero`` and
            boolean-mask indexing (read or write) in the block.
        cuda (int, optional): Synchronising operations PyTorch reported
            (``None`` off CUDA).

    Example:
        >>> with SyncCounter('cpu') as syncs:
        ...     bool(torch.ones(2).all())
        >>> syncs.calls
        1
    """

    def __init__(self, device='cpu') -> None:
        self.device = torch.device(device)
        self.calls = 0
        self.cuda: Optional[int] = None
        self._saved = {}
        self._busy = False

    def _count(self, fn, name):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            # Nested calls (tolist calling __index__ ...) are one wait.
            if self._busy:
                return fn(*args, **kwargs)
            index = args[1] if len(args) > 1 else None
            if name not in ('__getitem__', '__setitem__') or _has_bool_mask(index):
                self.calls += 1
            self._busy = True
            try:
                return fn(*args, **kwargs)
            finally:
                self._busy = False

        return wrapper

    def __enter__(self) -> 'SyncCounter':
        for name in VALUE_METHODS + ('__getitem__', '__setitem__'):
            self._saved[(torch.Tensor, name)] = torch.Tensor.__dict__.get(name)
            setattr(torch.Tensor, name, self._count(getattr(torch.Tensor, name), name))
        self._saved[(torch, 'nonzero')] = torch.nonzero
        torch.nonzero = self._count(torch.nonzero, 'nonzero')
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            self._warnings = warnings.catch_warnings(record=True)
            self._records = self._warnings.__enter__()
            warnings.simplefilter('always')
            torch.cuda.set_sync_debug_mode('warn')
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == 'cuda':
            torch.cuda.set_sync_debug_mode('default')
            self._warnings.__exit__(*exc)
            self.cuda = sum(_CUDA_SYNC_WARNING in str(w.message) for w in self._records)
        for (owner, name), value in self._saved.items():
            if value is None:
                delattr(owner, name)
            else:
                setattr(owner, name, value)
        self._saved = {}
