"""IFRHTCMaskHead: mmdet's ``HTCMaskHead`` with implicit feature refinement."""
from mmdet.models import HTCMaskHead
from mmdet.registry import MODELS
from mmifr.models.layers import IFRTowerMixin, PredictorInitMixin
from .ifr_conv_fc_mask_head import MASK_HEAD_TEST_SOLVER


@MODELS.register_module()
class IFRHTCMaskHead(IFRTowerMixin, PredictorInitMixin, HTCMaskHead):
    """HTC mask head with IFR in place of its four 3x3 convs.

    HTC's mask information flow is kept: the refined feature ``H*`` is the
    ``res_feat`` handed to the next stage. The default inference solve is
    that of :class:`IFRConvFCMaskHead`.

    Args:
        ifr_cfg (dict): config of the :class:`~mmifr.models.layers.IFRRefiner`
            that replaces each tower. Default: ``dict(type='IFRRefiner')``.
        predictor_init_std (float, optional): std of the N(0, std) init of
            the predictors behind the refiner (``init_predictors``), ``None``
            for mmdet's; see :class:`~mmifr.models.layers.PredictorInitMixin`.
            Default: 0.001.
        *args, **kwargs: arguments of mmdet's ``HTCMaskHead``.
    """
    ifr_towers = ('convs', )
    init_predictors = ('conv_logits', )
    default_test_solver = MASK_HEAD_TEST_SOLVER
