"""Probes of an RoI mask head on ground-truth boxes.

Two questions that mask AP mixes with detection quality and seed noise:

* :func:`gt_box_mask_quality`: how well the mask head segments when the
  boxes are right: BCE and mask IoU of its 28x28 masks on the ground-truth
  boxes (train and val images: does it fit, does it generalise?);
* :func:`tower_response`: what the tower in front of the predictor does to
  its input ``X``: how strongly its output follows a small change of ``X``
  (relative sensitivity) and how local that response is (a change at the
  RoI's centre against the change it causes at the border rows).

Used by ``tools/analysis_tools/probe_mask_head.py``.
"""
from typing import Callable, Dict, Iterable, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmdet.structures.bbox import get_box_tensor
from .roi_features import mask_roi_features


def gt_box_rois(model, batches: Iterable[dict],
                max_images: int) -> Iterable[Tuple[Tensor, Tensor, object]]:
    """Yield ``(RoI features (N, C, S, S), labels (N,), targets (N, 2S, 2S))``
    for the ground-truth boxes of one image at a time: the mask head's input,
    and the binary masks cropped to the boxes at the resolution of an FCN mask
    head's output. Images without objects are skipped."""
    for i, batch in enumerate(batches):
        if i >= max_images:
            break
        data = model.data_preprocessor(batch, False)
        gt = data['data_samples'][0].gt_instances
        if len(gt) == 0:
            continue
        boxes = get_box_tensor(gt.bboxes)
        x = mask_roi_features(model, data['inputs'], [boxes])
        yield x, gt.labels, gt.masks.crop_and_resize(
            boxes, (2 * x.shape[-2], 2 * x.shape[-1]), torch.arange(len(gt)),
            device=x.device, binarize=True).to_tensor(torch.float32, x.device)


def gt_box_mask_quality(model, batches: Iterable[dict], max_images: int) -> Dict[str, float]:
    """Mean per-RoI BCE and mask IoU (logit > 0 against the target) of the
    mask head on the ground-truth boxes of up to ``max_images`` images.

    Returns:
        dict: ``loss``, ``mask_iou`` and ``num_rois``.
    """
    loss = iou = 0.
    count = 0
    with torch.no_grad():
        for x, labels, targets in gt_box_rois(model, batches, max_images):
            logits = model.roi_head.mask_head(x)[torch.arange(len(labels)), labels]
            loss += F.binary_cross_entropy_with_logits(
                logits, targets, reduction='none').mean((1, 2)).sum().item()
            pred, gt = logits > 0, targets > 0.5
            inter = (pred & gt).flatten(1).sum(1)
            union = (pred | gt).flatten(1).sum(1).clamp(min=1)
            iou += (inter / union).sum().item()
            count += len(labels)
    return dict(loss=loss / max(count, 1), mask_iou=iou / max(count, 1), num_rois=count)


def tower_response(tower: Callable[[Tensor], Tensor], x: Tensor, eps: float = 1e-2,
                   seed: int = 0) -> Dict[str, float]:
    """Sensitivity and locality of ``tower`` at the RoI features ``x``.

    Args:
        tower: maps ``(N, C, S, S)`` RoI features to the ``(N, C', S, S)``
            feature the predictor reads (e.g. the stock conv tower, or an
            IFR refiner solved to a tight tolerance).
        x (Tensor): ``(N, C, S, S)`` RoI features.
        eps (float): size of the perturbation relative to ``x``'s std.

    Returns:
        dict: ``sensitivity`` (``(|d out| / |out|) / (|dx| / |x|)`` for a
        random ``dx``), ``locality`` (mean change of the output's channel
        vector over the central 3x3 cells against the 3 border rows, for a
        change of ``x`` at the central cell only), ``out_rms``.
    """
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(x.shape, generator=generator).to(x)
    with torch.no_grad():
        out = tower(x)
        dx = noise * x.std() * eps
        sensitivity = ((tower(x + dx) - out).norm() / out.norm()) / (dx.norm() / x.norm())
        c = x.shape[-1] // 2
        bump = torch.zeros_like(x)
        bump[..., c, c] = noise[..., c, c] * x.std() * 10 * eps
        moved = (tower(x + bump) - out).norm(dim=1)
        border = torch.cat([moved[:, :3].flatten(1), moved[:, -3:].flatten(1)], 1).mean()
        locality = moved[:, c - 1:c + 2, c - 1:c + 2].mean() / border.clamp(min=1e-12)
    return dict(
        sensitivity=sensitivity.item(),
        locality=locality.item(),
        out_rms=out.pow(2).mean().sqrt().item())
