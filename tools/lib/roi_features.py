"""Mask RoI features of a detector: the input of its mask head's tower.

One extraction for every tool: the cost benchmark's real RoIs, the
initializer fit, the convergence analysis, the mask-head probe and the
feature pictures all read the features of the model's own backbone, neck and
mask RoI extractor the same way.
"""
from typing import Iterable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from mmdet.structures.bbox import bbox2roi, get_box_tensor


def mask_roi_features(model: nn.Module, inputs: Tensor, boxes: Sequence[Tensor]) -> Tensor:
    """The mask RoI extractor's features of ``boxes``.

    Args:
        model: A two-stage detector (``model.roi_head.mask_roi_extractor``).
        inputs: A batch as its data preprocessor returns it, ``(B, 3, H, W)``.
        boxes: Per image of the batch, ``(n_i, 4)`` boxes (x1, y1, x2, y2) in
            the coordinates of the preprocessed image.

    Returns:
        Tensor: ``(sum n_i, C, S, S)`` features, images in batch order.
    """
    feats = model.extract_feat(inputs)
    extractor = model.roi_head.mask_roi_extractor
    return extractor(feats[:extractor.num_inputs], bbox2roi(list(boxes)))


@torch.no_grad()
def gt_roi_features(model: nn.Module, loader: Iterable[dict],
                    max_rois: Optional[int] = None) -> Tuple[Tensor, List[dict]]:
    """Mask RoI features of the ground-truth boxes of the images of ``loader``.

    Args:
        model: A two-stage detector.
        loader: Batches as mmengine's ``pseudo_collate`` makes them (see
            :func:`~tools.lib.models.build_loader`).
        max_rois: Stop after the batch that reaches this many RoIs, and keep
            that many; ``None`` for the RoIs of every image.

    Returns:
        tuple: ``(N, C, S, S)`` features and, per RoI, a dict with
        ``img_path``, ``box`` (x1, y1, x2, y2 in the original image) and
        ``label``.

    Raises:
        ValueError: If the images hold no ground-truth object.
    """
    feats, infos = [], []
    for batch in loader:
        data = model.data_preprocessor(batch, False)
        samples = data['data_samples']
        boxes = [get_box_tensor(s.gt_instances.bboxes) for s in samples]
        if not sum(len(b) for b in boxes):
            continue
        feats.append(mask_roi_features(model, data['inputs'], boxes))
        for sample, image_boxes in zip(samples, boxes):
            sx, sy = sample.metainfo.get('scale_factor', (1.0, 1.0))
            for box, label in zip(image_boxes.tolist(), sample.gt_instances.labels.tolist()):
                infos.append(
                    dict(
                        img_path=sample.metainfo.get('img_path'),
                        box=[box[0] / sx, box[1] / sy, box[2] / sx, box[3] / sy],
                        label=int(label)))
        if max_rois is not None and len(infos) >= max_rois:
            break
    if not feats:
        raise ValueError('no ground-truth objects in the images given')
    keep = len(infos) if max_rois is None else max_rois
    return torch.cat(feats)[:keep], infos[:keep]
