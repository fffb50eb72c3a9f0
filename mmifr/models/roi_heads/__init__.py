from .mask_heads import IFRConvFCMaskHead, IFRHTCMaskHead

__all__ = ['IFRConvFCMaskHead', 'IFRHTCMaskHead']
