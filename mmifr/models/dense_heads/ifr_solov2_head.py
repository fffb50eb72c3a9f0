"""IFRSOLOV2Head: mmdet's ``SOLOV2Head`` with implicit feature refinement."""
from mmdet.models import SOLOV2Head
from mmdet.registry import MODELS
from mmifr.models.layers import IFRTowerMixin


@MODELS.register_module()
class IFRSOLOV2Head(IFRTowerMixin, SOLOV2Head):
    """SOLOv2 head with IFR in place of its kernel and category towers.

    The kernel tower's input carries two coordinate channels; the refiner
    projects it to ``feat_channels`` with a 1x1 conv before the solve.

    Args:
        ifr_cfg (dict): config of the :class:`~mmifr.models.layers.IFRRefiner`
            that replaces each tower. Default: ``dict(type='IFRRefiner')``.
        *args, **kwargs: arguments of mmdet's ``SOLOV2Head``.
    """
    ifr_towers = ('kernel_convs', 'cls_convs')
