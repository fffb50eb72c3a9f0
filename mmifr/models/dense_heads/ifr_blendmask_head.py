"""BlendMask's bottom module with implicit feature refinement."""
from mmdet.registry import MODELS
from mmifr.models.layers import IFRTowerMixin
from .blendmask_head import BlendMaskHead


@MODELS.register_module()
class IFRBlendMaskHead(IFRTowerMixin, BlendMaskHead):
    """:class:`BlendMaskHead` with IFR in place of the bottom module's
    stacked convs (``basis_convs``, run on the whole stride-8 feature): the
    mask branch, the paper's placement (Sec. 3.2). The IFR BlendMask configs
    keep the stock box head; ``bbox_head.type='IFRCondInstBboxHead'`` refines
    its two towers too (a variant, not the paper's row).

    Args:
        ifr_cfg (dict): config of the refiner.
        *args, **kwargs: arguments of :class:`BlendMaskHead`.
    """
    ifr_towers = ('basis_convs', )
