"""Make MMEngine checkpoints loadable with ``torch.load(weights_only=True)``.

Since PyTorch 2.6 ``torch.load`` defaults to ``weights_only=True``: it
unpickles only tensors, containers and primitive types plus the globals a
program allow-lists with ``torch.serialization.add_safe_globals``. MMEngine
0.10.7 calls ``torch.load(filename, map_location=...)`` without the argument
(``mmengine/runner/checkpoint.py``), and the checkpoints written by its
``CheckpointHook`` hold more than weights: the ``message_hub`` state pickles
``mmengine.logging.HistoryBuffer`` objects, which hold numpy arrays and
scalars and, through ``HistoryBuffer.__getstate__``, a dict of its statistics
methods (``HistoryBuffer.min`` ...), which pickle protocol 2 writes as
``getattr(HistoryBuffer, 'min')``. Resuming therefore fails with::

    UnpicklingError: ... GLOBAL mmengine.logging.history_buffer.HistoryBuffer
    was not an allowed global by default

(open-mmlab/mmengine#1655). The globals below were found empirically, by
saving a real checkpoint of an mmdet Mask R-CNN trained with
``IterBasedTrainLoop`` and listing them with
``torch.serialization.get_unsafe_globals_in_checkpoint``:

- ``mmengine.logging.history_buffer.HistoryBuffer``;
- ``numpy.core.multiarray._reconstruct``, ``numpy.ndarray`` and the numpy
  dtype classes (``numpy.dtype`` and, since numpy 1.25/2.0, its per-type
  subclasses such as ``numpy.dtypes.Float64DType``): the buffers' arrays;
- ``numpy.core.multiarray.scalar``: numpy scalars such as the ``eta`` runtime
  value;
- ``builtins.getattr``: only as a *restricted* replacement that resolves the
  public methods of ``HistoryBuffer`` and nothing else.

(``collections.OrderedDict``, ``collections.Counter`` used by
``MultiStepLR``'s state, ``_codecs.encode`` and torch's own types are
already allowed by PyTorch.)

Why an allow-list and not ``weights_only=False``: unpickling is arbitrary
code execution. A monkeypatched ``torch.load(weights_only=False)`` would make
every checkpoint mmengine opens, including a downloaded ``load_from`` or a
file dropped in a shared work dir, able to run code on the training machine.
The allow-list keeps PyTorch's safe unpickler and only teaches it the few
data-only types mmengine itself writes; a checkpoint that needs anything else
still fails loudly, and the caller can decide to trust it explicitly (with
``register_checkpoint_safe_globals(extra=...)``, the
``torch.serialization.safe_globals`` context manager, or
``weights_only=False`` at one call site).

:func:`register_checkpoint_safe_globals` runs on ``import mmifr`` (from
``mmifr/utils/__init__.py``); the tools import ``mmifr`` before they build a
Runner, and configs that use ``custom_imports=dict(imports=['mmifr'])`` get
it before any checkpoint is loaded.
"""
import pickle
from typing import Any, Callable, List, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

SafeGlobal = Union[Callable, Tuple[Callable, str]]

#: The statistics ``HistoryBuffer`` registers by default, the only lookups the
#: restricted ``getattr`` below resolves. (Custom statistics added with
#: ``HistoryBuffer.register_statistics`` are module-level functions, pickled
#: by their own path; trust them with ``register_checkpoint_safe_globals``.)
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to the statistics methods of HistoryBuffer.

    A real ``builtins.getattr`` in the safe unpickler would let a crafted
    checkpoint walk from any allowed object to arbitrary ones
    (``__init__.__globals__`` ...). This replacement accepts only the lookups
    that ``HistoryBuffer.__getstate__`` produces. (It is registered under
    the name ``builtins.getattr``; allow-listing the real ``getattr``
    elsewhere would compete for that name, so don't.)

    Raises:
        pickle.UnpicklingError: For any other object or attribute name.
    """
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'mmifr safe checkpoint loading refuses getattr({obj!r}, {name!r}); only '
        f'HistoryBuffer statistics methods {list(_HISTORY_BUFFER_METHODS)} are allowed. '
        'If you trust this file, add what it needs with '
        'mmifr.utils.register_checkpoint_safe_globals.')


def _numpy_multiarray_globals() -> List[Tuple[Callable, str]]:
    """numpy's array/scalar reconstructors under both of their pickle paths.

    numpy 2 moved ``numpy.core`` to ``numpy._core``; checkpoints written with
    either major version must load with either, so both names are mapped to
    the installed functions.
    """
    multiarray = getattr(np, '_core', None)
    multiarray = multiarray.multiarray if multiarray is not None else np.core.multiarray
    names = []
    for fn_name in ('_reconstruct', 'scalar'):
        fn = getattr(multiarray, fn_name)
        for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            names.append((fn, f'{module}.{fn_name}'))
    return names


def _numpy_dtype_classes() -> List[type]:
    """``numpy.dtype`` and its per-type subclasses.

    Since numpy 1.20 ``type(np.dtype('f8'))`` is a subclass of ``np.dtype``
    (``numpy.dtypes.Float64DType`` in numpy 2); the safe unpickler's BUILD
    step checks the exact type, so each concrete class must be listed.
    """
    classes = {np.dtype}
    for code in np.typecodes['All']:
        classes.add(type(np.dtype(code)))
    dtypes_module = getattr(np, 'dtypes', None)  # numpy >= 1.25
    if dtypes_module is not None:
        classes.update(
            obj for obj in vars(dtypes_module).values()
            if isinstance(obj, type) and issubclass(obj, np.dtype))
    return sorted(classes, key=lambda cls: f'{cls.__module__}.{cls.__qualname__}')


def checkpoint_safe_globals() -> List[SafeGlobal]:
    """The globals an MMEngine training checkpoint needs, for ``add_safe_globals``.

    Returns:
        list: Classes / functions, and ``(callable, 'module.name')`` pairs for
        names that must map to a different object than their own path.
    """
    return [
        HistoryBuffer,
        np.ndarray,
        *_numpy_dtype_classes(),
        *_numpy_multiarray_globals(),
        (_history_buffer_getattr, 'builtins.getattr'),
    ]


def register_checkpoint_safe_globals(extra: Sequence[SafeGlobal] = ()) -> List[SafeGlobal]:
    """Allow-list MMEngine checkpoint contents for ``weights_only`` loading.

    Idempotent (PyTorch keeps the globals in a set), so it is safe to call on
    every ``import mmifr``. A no-op on PyTorch < 2.4, which has no
    ``add_safe_globals`` and whose ``torch.load`` is not ``weights_only`` by
    default anyway.

    Args:
        extra (Sequence): More globals to trust, in the format of
            ``torch.serialization.add_safe_globals``, e.g. the class of a custom
            object a hook stores in the message hub.

    Returns:
        list: The globals that were registered (empty on old PyTorch).
    """
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:
        return []
    safe_globals = checkpoint_safe_globals() + list(extra)
    add_safe_globals(safe_globals)
    return safe_globals
