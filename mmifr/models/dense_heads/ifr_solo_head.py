"""IFRSOLOHead: mmdet's ``SOLOHead`` with implicit feature refinement."""
from mmdet.models import SOLOHead
from mmdet.registry import MODELS
from mmifr.models.layers import IFRTowerMixin


@MODELS.register_module()
class IFRSOLOHead(IFRTowerMixin, SOLOHead):
    """SOLO head with IFR in place of its mask tower, the paper's placement
    (the stacked convs of the mask branch, Sec. 3.2); the category tower
    stays stock. ``ifr_towers=('mask_convs', 'cls_convs')`` refines both (a
    variant, not the paper's row).

    The mask tower's input carries two extra coordinate channels; the refiner
    projects it to ``feat_channels`` with a 1x1 conv before the solve.

    Args:
        ifr_cfg (dict): config of the :class:`~mmifr.models.layers.IFRRefiner`
            that replaces each tower. Default: ``dict(type='IFRRefiner')``.
        ifr_towers (Sequence[str], optional): one or both of
            ``('mask_convs', 'cls_convs')``.
        *args, **kwargs: arguments of mmdet's ``SOLOHead``.
    """
    ifr_towers = ('mask_convs', )
    optional_ifr_towers = ('cls_convs', )
