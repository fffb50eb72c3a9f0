"""Tests of the pure-torch SipMask crop ops against their CUDA kernels' rule."""
import math

import pytest
import torch

from mmifr.models.utils import crop_split, crop_to_boxes


def _kernel_rule(cell_masks, boxes, num_cell=2):
    """SipMask's CropSplit kernel, one pixel at a time."""
    n, _, h, w = cell_masks.shape
    out = torch.zeros(n, h, w)
    for i in range(n):
        x1, y1, x2, y2 = boxes[i].tolist()
        roi_w, roi_h = (x2 - x1 + 0.1) / num_cell, (y2 - y1 + 0.1) / num_cell
        for ph in range(h):
            for pw in range(w):
                if pw >= x1 and ph >= y1 and pw < x2 and ph < y2:
                    idx_w, idx_h = int((pw - x1) / roi_w), int((ph - y1) / roi_h)
                    out[i, ph, pw] = cell_masks[i, idx_h * num_cell + idx_w, ph, pw]
    return out


def test_quadrants_of_a_box():
    cells = torch.arange(1., 5.).view(1, 4, 1, 1).expand(1, 4, 6, 6)
    out = crop_split(cells, torch.tensor([[0., 0., 3.9, 3.9]]))
    expected = torch.zeros(6, 6)
    expected[:2, :2], expected[:2, 2:4], expected[2:4, :2], expected[2:4, 2:4] = 1, 2, 3, 4
    torch.testing.assert_close(out[0], expected)


def test_matches_the_cuda_kernels_rule_on_random_boxes():
    g = torch.Generator().manual_seed(0)
    cells = torch.rand(5, 4, 12, 16, generator=g)
    xy = torch.rand(5, 2, generator=g) * torch.tensor([14., 10.]) - 1
    wh = torch.rand(5, 2, generator=g) * 8 + 0.5
    boxes = torch.cat([xy, xy + wh], 1)
    torch.testing.assert_close(crop_split(cells, boxes), _kernel_rule(cells, boxes))
    # Three cells a side as well.
    cells9 = torch.rand(5, 9, 12, 16, generator=g)
    torch.testing.assert_close(crop_split(cells9, boxes), _kernel_rule(cells9, boxes, 3))


def test_gradient_goes_to_the_picked_cell_only():
    cells = torch.zeros(1, 4, 6, 6, requires_grad=True)
    crop_split(cells, torch.tensor([[0., 0., 3.9, 3.9]])).sum().backward()
    grad = cells.grad[0]
    assert grad[0, :2, :2].eq(1).all() and grad[0, 2:].eq(0).all() and grad[0, :, 2:].eq(0).all()
    assert grad[3, 2:4, 2:4].eq(1).all() and grad.sum() == 16


def test_crop_to_boxes_is_the_inside_of_the_box():
    masks = torch.ones(2, 5, 5)
    out = crop_to_boxes(masks, torch.tensor([[1., 1., 3., 4.], [0., 0., 0., 0.]]))
    assert out[0].sum() == 2 * 3 and out[0, 1:4, 1:3].eq(1).all() and out[1].sum() == 0


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r'square number of cells and one box each; got 2 boxes'):
        crop_split(torch.zeros(1, 3, 4, 4), torch.zeros(2, 4))
    assert math.isclose(crop_split(torch.ones(0, 4, 4, 4), torch.zeros(0, 4)).numel(), 0)
