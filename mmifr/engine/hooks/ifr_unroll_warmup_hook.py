"""The reference recipe's unroll-then-DEQ schedule, as a hook."""
from typing import Optional

from mmengine.hooks import Hook

from mmdet.registry import HOOKS
from .ifr_solver_stats_hook import RefinerCache


def _is_int(value, minimum: int) -> bool:
    # bool is an int subclass; True as an iteration count is a config mistake.
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


@HOOKS.register_module()
class IFRUnrollWarmupHook(Hook):
    """Train IFR refiners unrolled first, then with the DEQ solve.

    The released IFR code trains the first 50k of 90k iterations with the
    block unrolled 4 times (weight-shared, plain autograd) and then switches
    to the Broyden solve. Here the switch point scales with the schedule:
    ``switch_ratio * max_iters`` (or ``switch_iter`` when given). The phase is
    derived from the runner's iteration before every training iteration, so
    a resumed run is in the right phase without any saved state, and
    validation during warm-up uses the same unrolled form as training.

    Args:
        switch_ratio (float): fraction of training run unrolled. Default: 5/9.
        switch_iter (int, optional): absolute iteration of the switch;
            overrides ``switch_ratio``.
        unroll_steps (int): weight-shared applications during warm-up.
    """
    priority = 'NORMAL'

    def __init__(self,
                 switch_ratio: float = 5 / 9,
                 switch_iter: Optional[int] = None,
                 unroll_steps: int = 4) -> None:
        if not 0 <= switch_ratio <= 1:
            raise ValueError(f'switch_ratio must be in [0, 1], got {switch_ratio!r}')
        if switch_iter is not None and not _is_int(switch_iter, minimum=0):
            raise ValueError(f'switch_iter must be a non-negative int, got {switch_iter!r}')
        if not _is_int(unroll_steps, minimum=1):
            raise ValueError(f'unroll_steps must be a positive int, got {unroll_steps!r}')
        self.switch_ratio = switch_ratio
        self.switch_iter = switch_iter
        self.unroll_steps = unroll_steps
        self._refiners = RefinerCache()

    def switch_point(self, runner) -> int:
        if self.switch_iter is not None:
            return self.switch_iter
        return int(round(self.switch_ratio * runner.max_iters))

    def in_warmup(self, runner) -> bool:
        return runner.iter < self.switch_point(runner)

    def _apply(self, runner) -> None:
        steps = self.unroll_steps if self.in_warmup(runner) else None
        for refiner in self._refiners(runner.model).values():
            refiner.set_unroll_warmup(steps)

    def before_train(self, runner) -> None:
        self._refiners.refresh(runner.model)
        self._apply(runner)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._apply(runner)
        # Refiners with a fixed budget have no solve to warm up: the phase is
        # logged only where some refiner follows it.
        if any(r.budget is None for r in self._refiners(runner.model).values()):
            runner.message_hub.update_scalar('train/ifr/unroll_warmup',
                                             float(self.in_warmup(runner)))

    def before_test(self, runner) -> None:
        # A standalone test run evaluates the trained model with the DEQ solve.
        for refiner in self._refiners.refresh(runner.model).values():
            refiner.set_unroll_warmup(None)
