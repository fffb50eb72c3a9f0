"""IFRConvFCMaskHead: mmdet's ``FCNMaskHead`` with implicit feature refinement."""
from mmdet.models import FCNMaskHead
from mmdet.registry import MODELS
from mmifr.models.layers import IFRTowerMixin, PredictorInitMixin
from .ifr_mask_loss_mixin import IFRMaskLossMixin

#: IFR at the stock model's cost, one key in ``ifr_cfg`` away: 2 block
#: evaluations in training and inference (each is 2 convs: the stock 4-conv
#: tower's cost), every iterate supervised (fixed-point correction, weights
#: 0.8^(K-k), normalised), the evaluations and the earlier iterate's
#: prediction recomputed in backward (``with_cp``: the same gradients, a
#: training peak below the stock head's). Not the default: on the demo data
#: it was not shown to be as accurate as the paper's protocol over the seeds
#: the project asks for (docs/ifr_at_stock_cost.md).
BUDGET_IFR_CFG = dict(budget=2, fp_correction=dict(gamma=0.8), with_cp=True)
#: Inference solve of the RoI mask heads (with the DEQ solve, ``budget=None``)
#: unless ``ifr_cfg.test_solver`` is set: stop each RoI at a relative residual of
#: 1e-2 and return ``F`` of its best iterate (a free extra step). On the three
#: trained CPU demo models (seed study) this takes 7.3 Broyden steps per RoI on
#: average instead of 11.4 for the full solve, at its mask AP (-0.07 +- 0.12);
#: ``tol=3e-2`` (5.3 steps) lost 0.4 on every seed (docs/performance.md).
#: ``ifr_cfg.test_solver=dict()`` restores the paper's protocol (the training
#: solve at test time).
MASK_HEAD_TEST_SOLVER = dict(tol=1e-2, output='fz')


@MODELS.register_module()
class IFRConvFCMaskHead(IFRMaskLossMixin, IFRTowerMixin, PredictorInitMixin, FCNMaskHead):
    """FCN mask head (Mask R-CNN, Cascade Mask R-CNN, Mask Scoring R-CNN,
    MaskTrack R-CNN) with IFR in place of its four 3x3 convs.

    Input ``(N, 256, 14, 14)`` RoI features; output ``(N, num_classes, 28, 28)``
    mask logits, as mmdet's head. With the default refiner the head has 1.46 M
    parameters against 2.64 M for the stock one (paper Tables 6 and 9).

    Unless ``ifr_cfg`` names a ``test_solver``, the refiner gets
    :data:`MASK_HEAD_TEST_SOLVER` as its inference solve. With
    :data:`BUDGET_IFR_CFG` (``budget=2``, ``fp_correction`` and
    ``with_cp``) it runs 2 block evaluations instead, trained with the mask
    loss on both iterates (:class:`IFRMaskLossMixin`, logged as
    ``loss_mask_fpc``).

    Args:
        ifr_cfg (dict, optional): config of the
            :class:`~mmifr.models.layers.IFRRefiner` that replaces each tower
            (any key may be given alone). Default: ``dict(type='IFRRefiner')``.
        predictor_init_std (float, optional): std of the N(0, std) init of
            the predictors behind the refiner (``init_predictors``), ``None``
            for mmdet's; see :class:`~mmifr.models.layers.PredictorInitMixin`.
            Default: 0.001.
        *args, **kwargs: arguments of mmdet's ``FCNMaskHead``.
    """
    ifr_towers = ('convs', )
    init_predictors = ('conv_logits', )
    default_test_solver = MASK_HEAD_TEST_SOLVER
