"""Fixed-point correction for the FCN-style IFR mask heads: mmdet's mask loss
on every iterate of a fixed-budget refiner."""
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Tuple

import torch.utils.checkpoint as cp
from mmengine.model import ModuleList
from torch import Tensor

from mmifr.models.layers import IFRRefiner
from mmifr.models.layers.ifr_refiner import fp_correction_weights

#: Suffix of the loss terms of the intermediate iterates (``loss_mask_fpc``).
FPC_SUFFIX = '_fpc'


class IFRMaskLossMixin:
    """Apply an FCN-style mask head's own predictor and loss to each iterate
    of its refiner (fixed-point correction, Bai et al., DEQ-Flow 2022).

    A refiner with ``budget=K`` and ``fp_correction=dict(gamma=g)`` keeps its
    iterates ``h_1 .. h_K`` in training. After the head's forward, each
    ``h_k`` with ``k < K`` goes through the rest of the head (mmdet's own
    forward with the refined tower bypassed, so upsampling, predictors and,
    for BMask R-CNN, the boundary branch are the head's own). In
    :meth:`loss_and_target` the head's loss of ``h_K`` is scaled by
    ``w_K`` and the losses of the earlier iterates are added, weighted
    ``w_k``, as ``<loss name>_fpc`` (``loss_mask_fpc``, and BMask R-CNN's
    boundary terms): ``w_k = g^(K-k)``, normalised to sum to 1, so the
    total weight of the mask loss is the stock head's. With the refiner's
    ``with_cp``, the earlier iterates' predictions are recomputed in backward
    instead of kept (activation checkpointing); they are built as the
    refiner returns, before the head's own layers read ``h_K``, so that
    backward (which runs the later-built graph first) frees the final
    prediction's activations before it recomputes an earlier one's.

    A head lists the tower whose iterates are supervised in
    ``fp_correction_tower`` and may override :meth:`_predict_iterate` when
    its forward takes more than the feature (HTC, BMask R-CNN).
    """
    fp_correction_tower: str = 'convs'

    def _fpc_refiner(self) -> Optional[IFRRefiner]:
        tower = getattr(self, self.fp_correction_tower, None)
        refiner = tower[0] if tower is not None and len(tower) else None
        return refiner if isinstance(refiner, IFRRefiner) else None

    @contextmanager
    def _tower_bypassed(self) -> Iterator[None]:
        """The head without its refined tower: mmdet's forward then maps an
        iterate (already refined) to the head's predictions."""
        tower = getattr(self, self.fp_correction_tower)
        setattr(self, self.fp_correction_tower, ModuleList())
        try:
            yield
        finally:
            setattr(self, self.fp_correction_tower, tower)

    def _predict_iterate(self, h: Tensor, *args, **kwargs) -> Dict[str, Tensor]:
        """The head's predictions from the iterate ``h`` (``(N, C, H, W)``)
        as keyword arguments of its ``loss_and_target``; ``args`` and
        ``kwargs`` are those of the head's forward after the feature."""
        return dict(mask_preds=super().forward(h, *args, **kwargs))

    def forward(self, x: Tensor, *args, **kwargs):
        """mmdet's forward of the head; in training, also the predictions of
        the refiner's earlier iterates, kept for :meth:`loss_and_target`."""
        self._iterate_preds: List[Dict[str, Tensor]] = []
        refiner = self._fpc_refiner()
        if refiner is None or not (self.training and refiner.fp_correction):
            return super().forward(x, *args, **kwargs)

        def predict(h: Tensor) -> Dict[str, Tensor]:
            with self._tower_bypassed():
                return self._predict_iterate(h, *args, **kwargs)

        def predict_earlier_iterates(module, inputs, output) -> None:
            # The refiner keeps iterates only when gradients are on.
            states = refiner.pop_states()
            if len(states) < 2:
                return
            if refiner.with_cp:
                # Recomputed in backward; the bypass is entered again then.
                preds = [cp.checkpoint(predict, h, use_reentrant=False) for h in states[:-1]]
            else:
                preds = [predict(h) for h in states[:-1]]
            self._iterate_preds = preds
            self._iterate_weights = fp_correction_weights(refiner.fp_correction['gamma'],
                                                          len(states))

        # Built before the rest of the head reads h_K: backward runs the
        # later-built graph first, so the final prediction's activations are
        # freed before the earlier iterates' are recomputed (with_cp).
        handle = refiner.register_forward_hook(predict_earlier_iterates)
        try:
            return super().forward(x, *args, **kwargs)
        finally:
            handle.remove()

    def pop_iterate_preds(self) -> Tuple[List[float], List[Dict[str, Tensor]]]:
        """Return and clear the predictions of the earlier iterates of the
        latest training forward.

        Returns:
            tuple: the weights ``[w_1, ..., w_K]`` and, for ``h_1 .. h_{K-1}``,
            the keyword arguments of ``loss_and_target`` (``mask_preds``,
            ...) they give; ``([], [])`` without fixed-point correction.
        """
        preds = getattr(self, '_iterate_preds', [])
        self._iterate_preds = []
        return (self._iterate_weights if preds else []), preds

    def loss_and_target(self, **kwargs) -> dict:
        """mmdet's ``loss_and_target`` (keyword arguments, as mmdet's RoI
        heads call it), plus the fixed-point correction terms.

        Returns:
            dict: as the base head's, its ``loss_mask`` dict holding the
            weighted loss of ``h_K`` and one ``<name>_fpc`` term per loss.
        """
        out = super().loss_and_target(**kwargs)
        weights, iterate_preds = self.pop_iterate_preds()
        if not iterate_preds:
            return out
        losses = out['loss_mask']
        for name in list(losses):
            losses[name] = losses[name] * weights[-1]
        for weight, preds in zip(weights, iterate_preds):
            extra = super().loss_and_target(**{**kwargs, **preds})['loss_mask']
            for name, value in extra.items():
                key = name + FPC_SUFFIX
                losses[key] = losses[key] + weight * value if key in losses else weight * value
        return out
