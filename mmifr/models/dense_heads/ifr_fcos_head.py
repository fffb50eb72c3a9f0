"""IFRFCOSHead: mmdet's ``FCOSHead`` with implicit feature refinement."""
from mmdet.models import FCOSHead
from mmdet.registry import MODELS
from mmifr.models.layers import IFRTowerMixin


@MODELS.register_module()
class IFRFCOSHead(IFRTowerMixin, FCOSHead):
    """FCOS head with IFR in place of its classification and regression towers.

    Args:
        ifr_cfg (dict): config of the :class:`~mmifr.models.layers.IFRRefiner`
            that replaces each tower. Default: ``dict(type='IFRRefiner')``.
        *args, **kwargs: arguments of mmdet's ``FCOSHead``.
    """
    ifr_towers = ('cls_convs', 'reg_convs')
