from .ifr_conv_fc_mask_head import IFRConvFCMaskHead
from .ifr_htc_mask_head import IFRHTCMaskHead
from .small_init_fcn_mask_head import SmallInitFCNMaskHead
from .weight_shared_fcn_mask_head import WeightSharedFCNMaskHead

__all__ = ['IFRConvFCMaskHead', 'IFRHTCMaskHead', 'SmallInitFCNMaskHead', 'WeightSharedFCNMaskHead']
