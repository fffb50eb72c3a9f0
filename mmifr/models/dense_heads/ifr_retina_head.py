"""IFRRetinaHead: mmdet's ``RetinaHead`` with implicit feature refinement."""
from mmdet.models import RetinaHead
from mmdet.registry import MODELS
from mmifr.models.layers import IFRTowerMixin, PredictorInitMixin


@MODELS.register_module()
class IFRRetinaHead(IFRTowerMixin, PredictorInitMixin, RetinaHead):
    """RetinaNet head with one IFR refiner per branch in place of the four
    stacked convs of its classification and regression towers (paper Sec. 3.6).

    Each FPN level ``(B, 256, H_l, W_l)`` is solved per image.

    Args:
        ifr_cfg (dict): config of the :class:`~mmifr.models.layers.IFRRefiner`
            that replaces each tower. Default: ``dict(type='IFRRefiner')``.
        predictor_init_std (float, optional): std of the N(0, std) init of
            the predictors behind the refiner (``init_predictors``), ``None``
            for mmdet's; see :class:`~mmifr.models.layers.PredictorInitMixin`.
            Default: 0.001.
        *args, **kwargs: arguments of mmdet's ``RetinaHead``.
    """
    ifr_towers = ('cls_convs', 'reg_convs')
    init_predictors = ('retina_cls', 'retina_reg')
