"""Helpers of the single-stage heads that predict a box-local mask per
instance (MEInst, BlendMask)."""
import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.roi_heads.mask_heads.fcn_mask_head import _do_paste_mask


def centerness_of_points(points: Tensor, boxes: Tensor) -> Tensor:
    """FCOS's centerness of ``(N, 2)`` points in their ``(N, 4)`` boxes:
    ``sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))``, 0 outside.
    MEInst and BlendMask weight their mask losses by it."""
    left_right = torch.stack([points[:, 0] - boxes[:, 0], boxes[:, 2] - points[:, 0]], 1)
    top_bottom = torch.stack([points[:, 1] - boxes[:, 1], boxes[:, 3] - points[:, 1]], 1)
    left_right, top_bottom = left_right.clamp(min=0), top_bottom.clamp(min=0)
    ratio = (left_right.min(1)[0] / left_right.max(1)[0].clamp(min=1e-6)) * (
        top_bottom.min(1)[0] / top_bottom.max(1)[0].clamp(min=1e-6))
    return ratio.sqrt()


def paste_box_masks(results: InstanceData, probs: Tensor, img_meta: dict, rescale: bool,
                    mask_thr: float) -> InstanceData:
    """Paste ``(N, R, R)`` box-local mask probabilities into ``results.bboxes``
    (boxes in the network input's scale, rescaled in place to the original
    image if ``rescale``, as mmdet's CondInst does) and set ``results.masks``
    ``(N, H, W)`` bool, thresholded at ``mask_thr``."""
    bboxes = results.bboxes
    if rescale:
        bboxes /= bboxes.new_tensor(img_meta['scale_factor']).repeat((1, 2))
        img_h, img_w = img_meta['ori_shape'][:2]
    else:
        img_h, img_w = img_meta['img_shape'][:2]
    masks, _ = _do_paste_mask(probs[:, None], bboxes, img_h, img_w, skip_empty=False)
    results.masks = masks >= mask_thr
    return results
