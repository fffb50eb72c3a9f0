"""SipMask's CUDA-only crop ops (``CropSplit``, ``CropSplitGt``) in pure torch."""
import torch
from torch import Tensor


def _inside_and_cell(boxes: Tensor, height: int, width: int, num_cell: int):
    """Per box: which pixels lie inside it, and which of its
    ``num_cell x num_cell`` cells each falls in (row-major index)."""
    xs = torch.arange(width, device=boxes.device, dtype=boxes.dtype).view(1, 1, width)
    ys = torch.arange(height, device=boxes.device, dtype=boxes.dtype).view(1, height, 1)
    x1, y1, x2, y2 = (boxes[:, i].view(-1, 1, 1) for i in range(4))
    inside = (xs >= x1) & (xs < x2) & (ys >= y1) & (ys < y2)
    # The kernels' cell size, (side + 0.1) / num_cell: the +0.1 keeps the
    # last pixel of a box in the last cell.
    cell_w, cell_h = (x2 - x1 + 0.1) / num_cell, (y2 - y1 + 0.1) / num_cell
    col = ((xs - x1) / cell_w).floor().clamp(0, num_cell - 1).long()
    row = ((ys - y1) / cell_h).floor().clamp(0, num_cell - 1).long()
    return inside, row * num_cell + col


def crop_split(cell_masks: Tensor, boxes: Tensor) -> Tensor:
    """Assemble SipMask's instance masks from per-cell masks.

    Pixel ``(y, x)`` of instance ``n`` takes the value of the mask of the
    cell of box ``n`` it lies in (SipMask: the 2 x 2 quadrants, each with its
    own coefficients), and 0 outside the box: what SipMask's ``CropSplit``
    CUDA kernel computes, with the same cell rule, differentiable through
    ``gather``.

    Args:
        cell_masks (Tensor): ``(N, C * C, H, W)``, cells in row-major order
            (top-left, top-right, bottom-left, bottom-right for C = 2).
        boxes (Tensor): ``(N, 4)`` boxes ``(x1, y1, x2, y2)`` in pixels of
            the masks.

    Returns:
        Tensor: ``(N, H, W)``.
    """
    n, cells, height, width = cell_masks.shape
    num_cell = int(round(cells**0.5))
    if num_cell * num_cell != cells or len(boxes) != n:
        raise ValueError(f'crop_split: cell_masks of shape {tuple(cell_masks.shape)} need a '
                         f'square number of cells and one box each; got {len(boxes)} boxes')
    inside, cell = _inside_and_cell(boxes.to(cell_masks.dtype), height, width, num_cell)
    picked = cell_masks.gather(1, cell.expand(n, height, width).unsqueeze(1)).squeeze(1)
    return picked * inside


def crop_to_boxes(masks: Tensor, boxes: Tensor) -> Tensor:
    """``(N, H, W)`` masks zeroed outside their ``(N, 4)`` boxes (SipMask's
    ``CropSplitGt``: the targets of :func:`crop_split`'s output)."""
    inside, _ = _inside_and_cell(boxes.to(masks.dtype), masks.shape[-2], masks.shape[-1], 1)
    return masks * inside
