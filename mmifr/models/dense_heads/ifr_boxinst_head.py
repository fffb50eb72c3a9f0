"""BoxInst heads with implicit feature refinement."""
from mmdet.models import BoxInstBboxHead, BoxInstMaskHead
from mmdet.registry import MODELS
from mmifr.models.layers import IFRTowerMixin


@MODELS.register_module()
class IFRBoxInstBboxHead(IFRTowerMixin, BoxInstBboxHead):
    """BoxInst box head with IFR in place of its two towers.

    An opt-in: the BoxInst configs refine the mask branch only (the paper's
    instance segmentation rows), since the regression tower also feeds the
    controller that writes the dynamic mask weights, which trains poorly on
    a refined feature at the demo's scale (configs/ifr/README.md).

    Args:
        ifr_cfg (dict): config of the refiner replacing each tower.
        *args, **kwargs: arguments of mmdet's ``BoxInstBboxHead``.
    """
    ifr_towers = ('cls_convs', 'reg_convs')


@MODELS.register_module()
class IFRBoxInstMaskHead(IFRTowerMixin, BoxInstMaskHead):
    """BoxInst mask head with IFR in place of its mask branch's stacked convs.

    Args:
        ifr_cfg (dict): config of the refiner replacing the branch.
        *args, **kwargs: arguments of mmdet's ``BoxInstMaskHead``.
    """
    ifr_towers = ('mask_feature_head.conv_branch', )
