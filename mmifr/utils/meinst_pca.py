"""Fitting MEInst's mask PCA on a COCO-format training set.

The masks are cropped exactly as :class:`~mmifr.models.dense_heads.MEInstMaskHead`
crops its targets (mmdet's ``BitmapMasks.crop_and_resize`` of each instance
to its annotated box), so the PCA describes what the model is trained on.
"""
from typing import Callable, Iterator, Optional

import numpy as np
import torch
from pycocotools.coco import COCO
from torch import Tensor

from mmdet.structures.mask import BitmapMasks
from mmifr.models.task_modules import PCAMaskCoder, PCAMaskStatistics


def iter_box_cropped_masks(ann_file: str,
                           mask_size: int = 28,
                           max_images: Optional[int] = None,
                           on_image: Optional[Callable[[], None]] = None) -> Iterator[Tensor]:
    """Yield, per image, the ``(N, S, S)`` binary masks of its non-crowd
    instances cropped to their boxes (images without any are skipped)."""
    coco = COCO(ann_file)
    img_ids = sorted(coco.getImgIds())[:max_images]
    for img_id in img_ids:
        info = coco.loadImgs(img_id)[0]
        anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=img_id, iscrowd=False))
                if a['bbox'][2] > 0 and a['bbox'][3] > 0]
        if anns:
            masks = BitmapMasks(np.stack([coco.annToMask(a) for a in anns]), info['height'],
                                info['width'])
            boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in anns)],
                             dtype=np.float32)
            crops = masks.crop_and_resize(boxes, (mask_size, mask_size), np.arange(len(anns)))
            yield torch.from_numpy(crops.masks).float()
        if on_image is not None:
            on_image()


def reconstruction_iou(coder: PCAMaskCoder, masks: Tensor, thr: float = 0.5) -> Tensor:
    """Per-mask IoU of ``decode(encode(masks)) >= thr`` with ``masks``
    (``(N, S, S)`` in {0, 1}); an empty mask reconstructed empty counts 1."""
    recon = coder.decode(coder.encode(masks)) >= thr
    target = masks >= 0.5
    inter = (recon & target).flatten(1).sum(1).float()
    union = (recon | target).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def fit_pca(ann_file: str,
            dim: int = 60,
            mask_size: int = 28,
            sigmoid: bool = True,
            eps: float = 0.01,
            max_images: Optional[int] = None,
            on_image: Optional[Callable[[], None]] = None) -> dict:
    """Fit the PCA on ``ann_file``; returns what :class:`PCAMaskCoder`'s
    ``pca_file`` holds: ``components``, ``explained_variance``, ``mean`` and
    the fit's ``dim``, ``mask_size``, ``sigmoid``, ``eps``, ``num_masks``."""
    stats = PCAMaskStatistics(mask_size, sigmoid=sigmoid, eps=eps)
    for masks in iter_box_cropped_masks(ann_file, mask_size, max_images, on_image):
        stats.update(masks)
    pca = stats.pca(dim)
    pca.update(dim=dim, mask_size=mask_size, sigmoid=sigmoid, eps=eps, num_masks=stats.count)
    return pca
