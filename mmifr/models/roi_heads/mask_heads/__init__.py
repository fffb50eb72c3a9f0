from .boundary_preserving_mask_head import BoundaryPreservingMaskHead, laplacian_boundary_targets
from .ifr_boundary_preserving_mask_head import IFRBoundaryPreservingMaskHead
from .ifr_conv_fc_mask_head import IFRConvFCMaskHead
from .ifr_htc_mask_head import IFRHTCMaskHead
from .ifr_mask_loss_mixin import IFRMaskLossMixin
from .small_init_fcn_mask_head import SmallInitFCNMaskHead
from .small_init_htc_mask_head import SmallInitHTCMaskHead
from .weight_shared_fcn_mask_head import WeightSharedFCNMaskHead

__all__ = [
    'BoundaryPreservingMaskHead', 'IFRBoundaryPreservingMaskHead', 'IFRConvFCMaskHead',
    'IFRHTCMaskHead', 'IFRMaskLossMixin', 'SmallInitFCNMaskHead', 'SmallInitHTCMaskHead',
    'WeightSharedFCNMaskHead', 'laplacian_boundary_targets'
]
