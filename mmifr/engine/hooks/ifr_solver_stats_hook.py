"""Writes the IFR solvers' statistics to mmengine's log."""
from collections import defaultdict
from typing import Dict, List, Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS
from mmifr.models.layers import IFRRefiner


def find_refiners(model) -> Dict[str, IFRRefiner]:
    """All :class:`IFRRefiner` modules of a (possibly wrapped) model by name."""
    if is_model_wrapper(model):
        model = model.module
    return {name: m for name, m in model.named_modules() if isinstance(m, IFRRefiner)}


class RefinerCache:
    """:func:`find_refiners` of a runner's model, looked up once per model.

    ``named_modules()`` walks the whole detector (hundreds of modules); done
    every iteration it stalls each training step on the host. The hooks
    refresh the cache where the model may have changed (before training,
    validation and testing) and read it in between.
    """

    def __init__(self) -> None:
        self._model = None
        self._refiners: Dict[str, IFRRefiner] = {}

    def refresh(self, model) -> Dict[str, IFRRefiner]:
        """Look the refiners of ``model`` up again."""
        self._model, self._refiners = model, find_refiners(model)
        return self._refiners

    def __call__(self, model) -> Dict[str, IFRRefiner]:
        """The refiners of ``model``: cached, unless the model is another."""
        return self._refiners if model is self._model else self.refresh(model)


@HOOKS.register_module()
class IFRSolverStatsHook(Hook):
    """Log the forward/backward solver statistics of every IFR refiner.

    After each training iteration (backward included) the statistics the
    refiners queued are averaged and written as ``train/ifr/<key>`` scalars
    of the message hub, so they appear in mmengine's text log, its
    ``scalars.json`` and any visualizer backend next to the losses. Keys:
    ``fwd_nstep``, ``fwd_rel_residual``, ``fwd_abs_residual``,
    ``fwd_converged`` (fraction of samples), the same with ``bwd_``, and
    ``nonfinite_events`` (cumulative count of solves that met NaN/Inf) and,
    with ``jac_reg``, ``jac_frobenius`` (the unweighted Jacobian estimate).

    Args:
        by_refiner (bool): also log each refiner separately, keyed by its
            module name. Default: False.
    """
    # Above LoggerHook (BELOW_NORMAL): the scalars must be in the message hub
    # before the logger formats this iteration's line. At equal priority the
    # logger, a default hook, runs first, so every value (the NaN counter
    # included) would show up one iteration late and the last one never.
    priority = 'NORMAL'

    def __init__(self, by_refiner: bool = False) -> None:
        self.by_refiner = by_refiner
        self._refiners = RefinerCache()

    def before_train(self, runner) -> None:
        self._refiners.refresh(runner.model)

    def before_val(self, runner) -> None:
        self._refiners.refresh(runner.model)

    def before_test(self, runner) -> None:
        self._refiners.refresh(runner.model)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        refiners = self._refiners(runner.model)
        totals: Dict[str, List[float]] = defaultdict(list)
        for name, refiner in refiners.items():
            summaries = [s.summary() for s in refiner.pop_stats()]
            for key in {k for s in summaries for k in s}:
                values = [s[key] for s in summaries if key in s]
                mean = sum(values) / len(values)
                totals[key].append(mean)
                if self.by_refiner:
                    runner.message_hub.update_scalar(f'train/ifr/{name}/{key}', mean)
            estimates = refiner.pop_jacobian_estimates()
            if estimates:
                mean = sum(estimates) / len(estimates)
                totals['jac_frobenius'].append(mean)
                if self.by_refiner:
                    runner.message_hub.update_scalar(f'train/ifr/{name}/jac_frobenius', mean)
        for key, values in totals.items():
            runner.message_hub.update_scalar(f'train/ifr/{key}', sum(values) / len(values))
        if refiners:
            runner.message_hub.update_scalar(
                'train/ifr/nonfinite_events',
                sum(r.nonfinite_events for r in refiners.values()))

    def _discard(self, runner) -> None:
        for refiner in self._refiners(runner.model).values():
            refiner.pop_stats()

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._discard(runner)

    def after_test_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._discard(runner)
