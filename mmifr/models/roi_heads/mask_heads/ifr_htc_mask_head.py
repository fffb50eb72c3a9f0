"""IFRHTCMaskHead: mmdet's ``HTCMaskHead`` with implicit feature refinement."""
from typing import Dict

from torch import Tensor

from mmdet.models import HTCMaskHead
from mmdet.registry import MODELS
from mmifr.models.layers import IFRTowerMixin, PredictorInitMixin
from .ifr_conv_fc_mask_head import MASK_HEAD_TEST_SOLVER
from .ifr_mask_loss_mixin import IFRMaskLossMixin


@MODELS.register_module()
class IFRHTCMaskHead(IFRMaskLossMixin, IFRTowerMixin, PredictorInitMixin, HTCMaskHead):
    """HTC mask head with IFR in place of its four 3x3 convs.

    HTC's mask information flow is kept: the refined feature ``H*`` is the
    ``res_feat`` handed to the next stage. The default inference solve is
    that of :class:`IFRConvFCMaskHead`; with a ``budget`` and
    ``fp_correction`` the mask logits of each iterate are supervised.

    Args:
        ifr_cfg (dict, optional): config of the
            :class:`~mmifr.models.layers.IFRRefiner` that replaces each tower.
            Default: ``dict(type='IFRRefiner')``.
        predictor_init_std (float, optional): std of the N(0, std) init of
            the predictors behind the refiner (``init_predictors``), ``None``
            for mmdet's; see :class:`~mmifr.models.layers.PredictorInitMixin`.
            Default: 0.001.
        *args, **kwargs: arguments of mmdet's ``HTCMaskHead``.
    """
    ifr_towers = ('convs', )
    init_predictors = ('conv_logits', )
    default_test_solver = MASK_HEAD_TEST_SOLVER

    def _predict_iterate(self, h: Tensor, *args, **kwargs) -> Dict[str, Tensor]:
        # The iterate already holds the previous stage's res_feat (it is added
        # before the tower); only the mask logits are supervised.
        return dict(mask_preds=HTCMaskHead.forward(self, h, return_logits=True, return_feat=False))

    def forward(self, x: Tensor, *args, **kwargs):
        # A feature-only pass (HTC's later stages reading this stage's
        # res_feat) is not supervised here: its iterates are dropped.
        if not kwargs.get('return_logits', True) or (len(args) > 1 and not args[1]):
            out = HTCMaskHead.forward(self, x, *args, **kwargs)
            refiner = self._fpc_refiner()
            if refiner is not None:
                refiner.pop_states()
            return out
        return super().forward(x, *args, **kwargs)
