"""SipMask's head with implicit feature refinement."""
from mmdet.registry import MODELS
from mmifr.models.layers import IFRTowerMixin
from .sipmask_head import SipMaskHead


@MODELS.register_module()
class IFRSipMaskHead(IFRTowerMixin, SipMaskHead):
    """:class:`SipMaskHead` with IFR in place of its stacked classification
    (3) and regression (4) towers (the paper's Table 4 row). The basis
    masks read the regression refiner's output as they read the tower's.

    Args:
        ifr_cfg (dict): config of each refiner.
        ifr_towers (Sequence[str], optional): a subset of
            ``('cls_convs', 'reg_convs')``.
        *args, **kwargs: arguments of :class:`SipMaskHead`.
    """
    ifr_towers = ('cls_convs', 'reg_convs')
