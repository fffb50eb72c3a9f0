"""Adds the IFR refiners' training losses to the model's loss dict."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS
from .ifr_solver_stats_hook import find_refiners


@HOOKS.register_module()
class IFRAuxLossHook(Hook):
    """Put the refiners' auxiliary losses into the loss dict.

    A refiner with ``jac_reg`` queues its Jacobian penalty at each training
    forward, one with an ``initializer`` the regression loss of its guess,
    one with ``consistency`` the distance of its last iterate to the fixed
    point, whatever head or framework it sits in. This hook adds a forward
    hook to the detector itself: after a ``mode='loss'`` forward it pops the
    queued losses and adds them to the returned dict as ``loss_ifr_jac`` /
    ``loss_ifr_init`` / ``loss_ifr_consistency``. From there each is an
    ordinary mmdet loss: summed by ``parse_losses``, logged beside
    ``loss_mask``, scaled like the others by gradient accumulation and AMP
    loss scaling, reduced by DDP.

    Before each training iteration it also tells those refiners the training
    progress (``runner.iter / runner.max_iters``), which schedules
    ``jac_reg`` (``ramp_ratio`` / ``end_ratio``).

    Without any refiner that queues losses the hook does nothing.
    """

    def __init__(self) -> None:
        self._handle = None
        self._refiners = {}

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self._refiners = {n: r for n, r in find_refiners(model).items() if r.has_aux_losses}
        if self._refiners and self._handle is None:
            self._handle = model.register_forward_hook(self._add_losses, with_kwargs=True)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        for refiner in self._refiners.values():
            refiner.set_train_progress(min(runner.iter / runner.max_iters, 1.0))

    def _add_losses(self, module, args, kwargs, output) -> Optional[dict]:
        if kwargs.get('mode') != 'loss' or not isinstance(output, dict):
            return None
        for refiner in self._refiners.values():
            for key, loss in refiner.pop_aux_losses().items():
                output[key] = output[key] + loss if key in output else loss
        return output

    def after_train(self, runner) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
