"""Mixed-precision training on the model's own device, CPU included."""
import functools
import importlib
from contextlib import contextmanager
from typing import Callable, Optional, Union

import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.runner.amp import autocast
from torch import nn

from mmdet.registry import OPTIM_WRAPPERS

#: Autocast dtypes accepted on CPU. fp16 is left out on purpose: its 5-bit
#: exponent needs a loss scaler, bf16 keeps fp32's range and needs none.
CPU_DTYPES = ('bfloat16', )


def _upcast(value):
    if isinstance(value, torch.Tensor) and value.dtype == torch.bfloat16 \
            and value.device.type == 'cpu':
        return value.float()
    return value


def _fp32_on_cpu(fn: Callable) -> Callable:
    """Run an mmcv C++ op in fp32 when it gets bf16 CPU tensors.

    mmcv's CPU kernels (``nms``, ``roi_align_forward`` ...) dispatch on
    float/double only and reject bf16 with ``expected scalar type Float but
    found BFloat16``; torch's autocast cannot reach them (they are not
    dispatcher ops). bf16 CPU arguments are upcast to fp32 copies, and any
    copy the op wrote into (mmcv ops fill pre-allocated outputs) is copied
    back into the caller's bf16 tensor. Unchanged inputs are not written back
    (a write would bump their autograd version counter).
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        new_args = [_upcast(a) for a in args]
        new_kwargs = {k: _upcast(v) for k, v in kwargs.items()}
        originals = (*args, *kwargs.values())
        upcast = (*new_args, *new_kwargs.values())
        pairs = [(old, new) for old, new in zip(originals, upcast) if new is not old]
        if not pairs:
            return fn(*args, **kwargs)
        out = fn(*new_args, **new_kwargs)
        with torch.no_grad():
            for old, new in pairs:
                back = new.to(old.dtype)
                # Bitwise, so that NaN inputs count as unchanged.
                if not torch.equal(back.view(torch.int16), old.view(torch.int16)):
                    old.copy_(back)
        return out

    wrapper._mmifr_fp32_on_cpu = True
    return wrapper


def upcast_mmcv_cpu_ops() -> bool:
    """Make mmcv's compiled ops accept bf16 CPU tensors (idempotent).

    Installed by :class:`DeviceAmpOptimWrapper` on CPU; tensors of any
    other dtype or device reach the ops unchanged.

    Returns:
        bool: whether mmcv's compiled ops (``mmcv._ext``) were found.
    """
    try:
        ext = importlib.import_module('mmcv._ext')
    except ImportError:  # mmcv-lite: no compiled ops to patch
        return False
    for name in dir(ext):
        fn = getattr(ext, name)
        if name.startswith('_') or isinstance(fn, type) or not callable(fn) \
                or getattr(fn, '_mmifr_fp32_on_cpu', False):
            continue
        setattr(ext, name, _fp32_on_cpu(fn))
    return True


def _device_type(optimizer: torch.optim.Optimizer) -> str:
    """The device type of the parameters ``optimizer`` updates.

    The Runner builds the optimizer wrapper after moving the model to its
    device, so this is the device the forward will run on.
    """
    for group in optimizer.param_groups:
        for param in group['params']:
            return param.device.type
    return 'cpu'


@OPTIM_WRAPPERS.register_module()
class DeviceAmpOptimWrapper(AmpOptimWrapper):
    """:class:`~mmengine.optim.AmpOptimWrapper` that also works on CPU.

    mmengine's ``AmpOptimWrapper`` asserts that a GPU (or NPU/MLU/MUSA) is
    present. This wrapper looks at the device of the parameters it updates:

    * on CPU it runs the forward and the loss under
      ``torch.autocast('cpu', dtype=torch.bfloat16)`` and back-propagates
      without loss scaling (bf16 has fp32's exponent range, so gradients do
      not underflow); ``loss_scale`` and ``use_fsdp`` are ignored there.
      mmcv's compiled CPU ops (NMS, RoIAlign ...) have no bf16 kernels, so
      they are made to compute in fp32 (see :func:`upcast_mmcv_cpu_ops`);
    * on any other device it *is* mmengine's ``AmpOptimWrapper``: fp16 (or
      ``dtype``) autocast with a (dynamic by default) loss scaler.

    The IFR solver is unaffected either way: :mod:`mmifr.ops.deq` keeps the
    solver state (iterates, Broyden/Anderson history, residuals) in fp32 and
    only the block itself (convs) runs in the autocast dtype.

    ``tools/train.py --amp`` selects this wrapper when CUDA is unavailable.
    In a config::

        optim_wrapper = dict(type='DeviceAmpOptimWrapper', optimizer=...)

    Args:
        loss_scale (float | str | dict): loss scaling of the non-CPU path,
            see ``AmpOptimWrapper``. Default: ``'dynamic'``.
        dtype (str | torch.dtype, optional): autocast dtype. On CPU only
            ``'bfloat16'`` (the default there) is accepted.
        use_fsdp (bool): see ``AmpOptimWrapper`` (non-CPU path only).
        device_type (str, optional): force the device type instead of taking
            it from the parameters (``'cpu'``, ``'cuda'`` ...).
        **kwargs: arguments of :class:`~mmengine.optim.OptimWrapper`
            (``optimizer``, ``accumulative_counts``, ``clip_grad``).
    """

    def __init__(self,
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Optional[Union[str, torch.dtype]] = None,
                 use_fsdp: bool = False,
                 device_type: Optional[str] = None,
                 **kwargs) -> None:
        self.device_type = device_type or _device_type(kwargs['optimizer'])
        if self.device_type != 'cpu':
            super().__init__(loss_scale=loss_scale, dtype=dtype, use_fsdp=use_fsdp, **kwargs)
            return
        if isinstance(dtype, torch.dtype):
            dtype = str(dtype).replace('torch.', '')
        if dtype is not None and dtype not in CPU_DTYPES:
            raise ValueError(f'dtype={dtype!r} is not supported for mixed precision on CPU; '
                             f'allowed values: {list(CPU_DTYPES)} (or None)')
        OptimWrapper.__init__(self, **kwargs)
        upcast_mmcv_cpu_ops()
        self.cast_dtype = torch.bfloat16
        # bf16 needs no loss scaling; ``None`` marks the CPU path below.
        self.loss_scaler = None
        self._scale_update_param = None

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        if self.loss_scaler is None:
            OptimWrapper.backward(self, loss, **kwargs)
        else:
            super().backward(loss, **kwargs)

    def step(self, **kwargs) -> None:
        if self.loss_scaler is None:
            OptimWrapper.step(self, **kwargs)
        else:
            super().step(**kwargs)

    def state_dict(self) -> dict:
        if self.loss_scaler is None:
            return OptimWrapper.state_dict(self)
        return super().state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        if self.loss_scaler is None and 'loss_scaler' in state_dict:
            # A checkpoint of a GPU AMP run resumed on CPU: no scaler here.
            state_dict = {k: v for k, v in state_dict.items() if k != 'loss_scaler'}
        super().load_state_dict(state_dict)

    @contextmanager
    def optim_context(self, model: nn.Module):
        """Autocast on this wrapper's device (and gradient-accumulation
        ``no_sync`` as in ``OptimWrapper``)."""
        with OptimWrapper.optim_context(self, model), autocast(
                device_type=self.device_type, dtype=self.cast_dtype):
            yield
