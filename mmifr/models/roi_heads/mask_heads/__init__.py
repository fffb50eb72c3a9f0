from .ifr_conv_fc_mask_head import IFRConvFCMaskHead
from .ifr_htc_mask_head import IFRHTCMaskHead

__all__ = ['IFRConvFCMaskHead', 'IFRHTCMaskHead']
