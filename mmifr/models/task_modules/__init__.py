from .pca_mask_coder import PCAMaskCoder, PCAMaskStatistics

__all__ = ['PCAMaskCoder', 'PCAMaskStatistics']
