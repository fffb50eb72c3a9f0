"""CondInst heads with implicit feature refinement."""
from mmdet.models import CondInstBboxHead, CondInstMaskHead
from mmdet.registry import MODELS
from mmifr.models.layers import IFRTowerMixin


@MODELS.register_module()
class IFRCondInstBboxHead(IFRTowerMixin, CondInstBboxHead):
    """CondInst box head (FCOS-like) with IFR in place of its two towers.

    An opt-in: the CondInst configs refine the mask branch only (the paper's
    instance segmentation rows), since the regression tower also feeds the
    controller that writes the dynamic mask weights, which trains poorly on
    a refined feature at the demo's scale (configs/ifr/README.md).

    Args:
        ifr_cfg (dict): config of the refiner replacing each tower.
        *args, **kwargs: arguments of mmdet's ``CondInstBboxHead``.
    """
    ifr_towers = ('cls_convs', 'reg_convs')


@MODELS.register_module()
class IFRCondInstMaskHead(IFRTowerMixin, CondInstMaskHead):
    """CondInst mask head with IFR in place of the stacked convs of its mask
    branch (``mask_feature_head.conv_branch``, run on the whole P3-P5 sum).

    Args:
        ifr_cfg (dict): config of the refiner replacing the branch.
        *args, **kwargs: arguments of mmdet's ``CondInstMaskHead``.
    """
    ifr_towers = ('mask_feature_head.conv_branch', )
