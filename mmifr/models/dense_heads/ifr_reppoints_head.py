"""IFRRepPointsHead: mmdet's ``RepPointsHead`` with implicit feature refinement."""
from mmdet.models import RepPointsHead
from mmdet.registry import MODELS
from mmifr.models.layers import IFRTowerMixin


@MODELS.register_module()
class IFRRepPointsHead(IFRTowerMixin, RepPointsHead):
    """RepPoints head with IFR in place of its classification and points towers.

    Args:
        ifr_cfg (dict): config of the :class:`~mmifr.models.layers.IFRRefiner`
            that replaces each tower. Default: ``dict(type='IFRRefiner')``.
        *args, **kwargs: arguments of mmdet's ``RepPointsHead``.
    """
    ifr_towers = ('cls_convs', 'reg_convs')
