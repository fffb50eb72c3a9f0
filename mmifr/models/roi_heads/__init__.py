from .mask_heads import IFRConvFCMaskHead, IFRHTCMaskHead, SmallInitFCNMaskHead, WeightSharedFCNMaskHead

__all__ = ['IFRConvFCMaskHead', 'IFRHTCMaskHead', 'SmallInitFCNMaskHead', 'WeightSharedFCNMaskHead']
