"""MEInst's box head with implicit feature refinement."""
from mmdet.registry import MODELS
from mmifr.models.layers import IFRTowerMixin
from .meinst_head import MEInstBboxHead


@MODELS.register_module()
class IFRMEInstBboxHead(IFRTowerMixin, MEInstBboxHead):
    """:class:`MEInstBboxHead` with IFR in place of its stacked towers.

    By default IFR replaces all three towers (classification, regression and
    mask coefficients), as mmifr's CondInst and FCOS heads replace theirs:
    in MEInst the mask is predicted by the FCOS head itself, from a tower
    built like the detection ones. ``ifr_towers=('mask_convs', )`` keeps
    the detection towers stock.

    Args:
        ifr_cfg (dict): config of each refiner.
        ifr_towers (Sequence[str], optional): a subset of
            ``('cls_convs', 'reg_convs', 'mask_convs')``.
        *args, **kwargs: arguments of :class:`MEInstBboxHead`.
    """
    ifr_towers = ('cls_convs', 'reg_convs', 'mask_convs')
