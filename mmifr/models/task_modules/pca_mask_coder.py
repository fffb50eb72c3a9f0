"""PCA encoding of box-cropped instance masks (MEInst, Zhang et al., CVPR 2020)."""
import os.path as osp
from typing import Dict, Optional

import torch
from torch import Tensor, nn

from mmdet.registry import TASK_UTILS


def _logit(masks: Tensor, eps: float) -> Tensor:
    masks = masks.clamp(eps, 1 - eps)
    return torch.log(masks / (1 - masks))


class PCAMaskStatistics:
    """Streaming mean and covariance of flattened masks, and their PCA.

    ``update`` takes batches of ``(N, S, S)`` masks in [0, 1] (the logit is
    taken first if ``sigmoid``); ``pca`` returns the ``dim`` leading
    components. Sums are kept in float64, so a whole COCO training set
    (~860k masks, S=28: a 784x784 covariance) fits in a few MB.

    Args:
        mask_size (int): ``S``. Default: 28.
        sigmoid (bool): fit in logit space (MEInst's default). Default: True.
        eps (float): masks are clamped to ``[eps, 1 - eps]`` before the
            logit. Default: 0.01.
    """

    def __init__(self, mask_size: int = 28, sigmoid: bool = True, eps: float = 0.01) -> None:
        self.mask_size, self.sigmoid, self.eps = mask_size, sigmoid, eps
        n = mask_size * mask_size
        self.count = 0
        self.sum = torch.zeros(n, dtype=torch.float64)
        self.outer = torch.zeros(n, n, dtype=torch.float64)

    def update(self, masks: Tensor) -> None:
        if masks.shape[-2:] != (self.mask_size, self.mask_size):
            raise ValueError(f'PCAMaskStatistics: masks of shape {tuple(masks.shape)}, expected '
                             f'(N, {self.mask_size}, {self.mask_size})')
        x = masks.reshape(len(masks), -1).double()
        if self.sigmoid:
            x = _logit(x, self.eps)
        self.count += len(x)
        self.sum += x.sum(0)
        self.outer += x.T @ x

    def pca(self, dim: int) -> Dict[str, Tensor]:
        """``components`` ``(dim, S*S)``, ``explained_variance`` ``(dim, )``
        (sample variances, largest first) and ``mean`` ``(S*S, )``."""
        if self.count < 2:
            raise ValueError(f'PCAMaskStatistics: {self.count} mask(s) seen, need at least 2')
        if not 0 < dim <= self.sum.numel():
            raise ValueError(f'PCAMaskStatistics: dim={dim} must be in [1, {self.sum.numel()}]')
        mean = self.sum / self.count
        cov = (self.outer - self.count * torch.outer(mean, mean)) / (self.count - 1)
        variances, vectors = torch.linalg.eigh(cov)
        order = variances.argsort(descending=True)[:dim]
        return dict(
            components=vectors[:, order].T.float().contiguous(),
            explained_variance=variances[order].clamp(min=0).float(),
            mean=mean.float())


@TASK_UTILS.register_module()
class PCAMaskCoder(nn.Module):
    """Encode ``S x S`` masks as ``dim`` PCA coefficients and back.

    ``encode``: logit (if ``sigmoid``), minus the mean, projected on the
    components, divided by their standard deviation (if ``whiten``);
    ``decode`` inverts it and returns mask probabilities (sigmoid). The PCA
    is a set of buffers, so it is saved in and loaded from the model's
    checkpoint; ``pca_file`` (written by ``tools/analysis_tools/fit_meinst_pca.py``)
    fills them when the model is built. Without a file the coder starts
    empty and must be loaded from a checkpoint (encoding with it raises).

    Args:
        dim (int): number of coefficients. Default: 60.
        mask_size (int): ``S``. Default: 28.
        pca_file (str, optional): a ``torch.save`` of
            :meth:`PCAMaskStatistics.pca`'s dict (plus the fit's settings).
        whiten (bool): Default: True.
        sigmoid (bool): Default: True.
        eps (float): clamp before the logit. Default: 0.01.
    """

    def __init__(self,
                 dim: int = 60,
                 mask_size: int = 28,
                 pca_file: Optional[str] = None,
                 whiten: bool = True,
                 sigmoid: bool = True,
                 eps: float = 0.01) -> None:
        super().__init__()
        self.dim, self.mask_size = dim, mask_size
        self.whiten, self.sigmoid, self.eps = whiten, sigmoid, eps
        n = mask_size * mask_size
        self.register_buffer('components', torch.zeros(dim, n))
        self.register_buffer('explained_variance', torch.zeros(dim))
        self.register_buffer('mean', torch.zeros(n))
        if pca_file is not None:
            if not osp.isfile(pca_file):
                # The file is fitted per dataset, not shipped: say how to make it.
                raise FileNotFoundError(
                    f'PCAMaskCoder: pca_file {pca_file!r} does not exist. Fit it on the training '
                    'masks with `python tools/analysis_tools/fit_meinst_pca.py '
                    f'<train annotation json> --out {pca_file}`, or set pca_file=None and load '
                    'the PCA from a trained checkpoint.')
            self.load_pca(torch.load(pca_file, map_location='cpu'), source=pca_file)

    def load_pca(self, pca: Dict[str, Tensor], source: str = 'the PCA') -> None:
        shapes = dict(components=self.components.shape,
                      explained_variance=self.explained_variance.shape, mean=self.mean.shape)
        for key, shape in shapes.items():
            if key not in pca or tuple(pca[key].shape) != tuple(shape):
                got = tuple(pca[key].shape) if key in pca else 'missing'
                raise ValueError(f'PCAMaskCoder: {source} has {key} of shape {got}; '
                                 f'dim={self.dim}, mask_size={self.mask_size} need {tuple(shape)}')
        if 'sigmoid' in pca and bool(pca['sigmoid']) != self.sigmoid:
            raise ValueError(f"PCAMaskCoder: {source} was fitted with sigmoid={pca['sigmoid']}, "
                             f'the coder has sigmoid={self.sigmoid}')
        for key in shapes:
            getattr(self, key).copy_(pca[key])

    def _checked_components(self) -> Tensor:
        if not self.explained_variance.any():
            raise RuntimeError('PCAMaskCoder: no PCA loaded; give pca_file (fit one with '
                               'tools/analysis_tools/fit_meinst_pca.py) or load a checkpoint')
        return self.components

    def encode(self, masks: Tensor) -> Tensor:
        """``(N, S, S)`` masks in [0, 1] -> ``(N, dim)`` coefficients."""
        x = masks.reshape(len(masks), -1).float()
        if self.sigmoid:
            x = _logit(x, self.eps)
        coeffs = (x - self.mean) @ self._checked_components().T
        if self.whiten:
            coeffs = coeffs / self.explained_variance.clamp(min=1e-12).sqrt()
        return coeffs

    def decode(self, coeffs: Tensor) -> Tensor:
        """``(N, dim)`` coefficients -> ``(N, S, S)`` mask probabilities."""
        if self.whiten:
            coeffs = coeffs * self.explained_variance.sqrt()
        x = coeffs @ self._checked_components() + self.mean
        x = x.sigmoid() if self.sigmoid else x.clamp(0, 1)
        return x.reshape(len(coeffs), self.mask_size, self.mask_size)
