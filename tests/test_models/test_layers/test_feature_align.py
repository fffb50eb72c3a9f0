"""Tests of ``FeatureAlign`` (SipMask's box-steered deformable conv)."""
import torch
import torch.nn.functional as F

from mmifr.models.layers import FeatureAlign


def test_zero_offsets_are_a_plain_conv_then_gn_and_relu():
    torch.manual_seed(0)
    align = FeatureAlign(8, num_groups=4)
    align.init_weights()
    x, boxes = torch.randn(2, 8, 6, 6), torch.rand(2, 4, 6, 6) * 5
    expected = F.relu(align.norm(F.conv2d(x, align.conv_adaption.weight, padding=1)))
    torch.testing.assert_close(align(x, boxes), expected, atol=1e-5, rtol=1e-4)


def test_the_box_moves_the_sampling_but_gets_no_gradient():
    torch.manual_seed(0)
    align = FeatureAlign(8, num_groups=4)
    torch.nn.init.normal_(align.conv_offset.weight, std=0.5)
    x = torch.randn(1, 8, 6, 6)
    boxes = torch.rand(1, 4, 6, 6, requires_grad=True)
    out = align(x, boxes)
    assert not torch.allclose(out, align(x, torch.zeros_like(boxes)))
    out.sum().backward()
    assert boxes.grad is None and align.conv_offset.weight.grad.abs().sum() > 0
