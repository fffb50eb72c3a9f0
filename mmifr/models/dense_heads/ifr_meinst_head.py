"""MEInst's box head with implicit feature refinement."""
from mmdet.registry import MODELS
from mmifr.models.layers import IFRTowerMixin
from .meinst_head import MEInstBboxHead


@MODELS.register_module()
class IFRMEInstBboxHead(IFRTowerMixin, MEInstBboxHead):
    """:class:`MEInstBboxHead` with IFR in place of its mask-coefficient
    tower (``mask_convs``), the paper's placement: IFR replaces the stacked
    convs of an instance segmenter's mask branch (Sec. 3.2), and in MEInst
    that branch is the FCOS head's third tower. The classification and
    regression towers stay stock; ``ifr_towers=('cls_convs', 'reg_convs',
    'mask_convs')`` refines all three (a variant, not the paper's row).

    Args:
        ifr_cfg (dict): config of each refiner.
        ifr_towers (Sequence[str], optional): one or more of
            ``('mask_convs', 'cls_convs', 'reg_convs')``.
        *args, **kwargs: arguments of :class:`MEInstBboxHead`.
    """
    ifr_towers = ('mask_convs', )
    optional_ifr_towers = ('cls_convs', 'reg_convs')
