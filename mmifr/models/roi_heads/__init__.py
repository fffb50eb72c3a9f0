from .mask_heads import IFRConvFCMaskHead, IFRHTCMaskHead, SmallInitFCNMaskHead

__all__ = ['IFRConvFCMaskHead', 'IFRHTCMaskHead', 'SmallInitFCNMaskHead']
