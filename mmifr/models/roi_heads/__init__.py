from .bmask_roi_head import BMaskRoIHead
from .mask_heads import (BoundaryPreservingMaskHead, IFRBoundaryPreservingMaskHead,
                         IFRConvFCMaskHead, IFRHTCMaskHead, IFRMaskLossMixin,
                         SmallInitFCNMaskHead, SmallInitHTCMaskHead,
                         WeightSharedFCNMaskHead, laplacian_boundary_targets)

__all__ = [
    'BMaskRoIHead', 'BoundaryPreservingMaskHead', 'IFRBoundaryPreservingMaskHead',
    'IFRConvFCMaskHead', 'IFRHTCMaskHead', 'IFRMaskLossMixin', 'SmallInitFCNMaskHead',
    'SmallInitHTCMaskHead', 'WeightSharedFCNMaskHead',
    'laplacian_boundary_targets'
]
