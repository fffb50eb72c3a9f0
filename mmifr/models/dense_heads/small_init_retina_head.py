"""mmdet's RetinaNet and FreeAnchor heads with the IFR heads' predictor init:
the stock sides of like-for-like comparisons."""
from mmdet.models import FreeAnchorRetinaHead, RetinaHead
from mmdet.registry import MODELS
from mmifr.models.layers import PredictorInitMixin


@MODELS.register_module()
class SmallInitRetinaHead(PredictorInitMixin, RetinaHead):
    """mmdet's ``RetinaHead`` (towers, anchors, loss and inference untouched)
    whose ``retina_cls`` and ``retina_reg`` weights start ~ N(0, 0.001), as
    those of :class:`~mmifr.models.dense_heads.IFRRetinaHead` do; the
    classifier keeps its prior-probability bias.

    With it the stock and IFR RetinaNet heads differ in their towers only
    (the demo pair uses it).

    Args:
        predictor_init_std (float, optional): see
            :class:`~mmifr.models.layers.PredictorInitMixin`.
        *args, **kwargs: arguments of mmdet's ``RetinaHead``.
    """
    init_predictors = ('retina_cls', 'retina_reg')


@MODELS.register_module()
class SmallInitFreeAnchorRetinaHead(PredictorInitMixin, FreeAnchorRetinaHead):
    """mmdet's ``FreeAnchorRetinaHead`` with the predictor init of
    :class:`~mmifr.models.dense_heads.IFRFreeAnchorRetinaHead`; see
    :class:`SmallInitRetinaHead`."""
    init_predictors = ('retina_cls', 'retina_reg')
