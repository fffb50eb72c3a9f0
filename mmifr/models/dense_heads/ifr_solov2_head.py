"""IFRSOLOV2Head: mmdet's ``SOLOV2Head`` with implicit feature refinement."""
from mmdet.models import SOLOV2Head
from mmdet.registry import MODELS
from mmifr.models.layers import IFRTowerMixin


@MODELS.register_module()
class IFRSOLOV2Head(IFRTowerMixin, SOLOV2Head):
    """SOLOv2 head with IFR in place of its kernel tower, the stacked convs
    of its mask branch (the paper's placement, Sec. 3.2); the category tower
    stays stock. ``ifr_towers=('kernel_convs', 'cls_convs')`` refines both
    (a variant, not the paper's row).

    The kernel tower's input carries two coordinate channels; the refiner
    projects it to ``feat_channels`` with a 1x1 conv before the solve.

    Args:
        ifr_cfg (dict): config of the :class:`~mmifr.models.layers.IFRRefiner`
            that replaces each tower. Default: ``dict(type='IFRRefiner')``.
        ifr_towers (Sequence[str], optional): one or both of
            ``('kernel_convs', 'cls_convs')``.
        *args, **kwargs: arguments of mmdet's ``SOLOV2Head``.
    """
    ifr_towers = ('kernel_convs', )
    optional_ifr_towers = ('cls_convs', )
