"""IFRFreeAnchorRetinaHead: mmdet's ``FreeAnchorRetinaHead`` with implicit feature refinement."""
from mmdet.models import FreeAnchorRetinaHead
from mmdet.registry import MODELS
from mmifr.models.layers import IFRTowerMixin, PredictorInitMixin


@MODELS.register_module()
class IFRFreeAnchorRetinaHead(IFRTowerMixin, PredictorInitMixin, FreeAnchorRetinaHead):
    """FreeAnchor head (a RetinaNet head with FreeAnchor's loss) with IFR towers.

    Args:
        ifr_cfg (dict): config of the :class:`~mmifr.models.layers.IFRRefiner`
            that replaces each tower. Default: ``dict(type='IFRRefiner')``.
        predictor_init_std (float, optional): std of the N(0, std) init of
            the predictors behind the refiner (``init_predictors``), ``None``
            for mmdet's; see :class:`~mmifr.models.layers.PredictorInitMixin`.
            Default: 0.001.
        *args, **kwargs: arguments of mmdet's ``FreeAnchorRetinaHead``.
    """
    ifr_towers = ('cls_convs', 'reg_convs')
    init_predictors = ('retina_cls', 'retina_reg')
