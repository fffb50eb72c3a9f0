"""Tests of ``WeightSharedConvStack`` (Fig. 1 (b), (c))."""
import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule

from mmifr.models.layers import WeightSharedConvStack


def _conv(channels=4, **kwargs):
    torch.manual_seed(0)
    return ConvModule(channels, channels, 3, padding=1, **kwargs)


def test_without_shortcut_applies_the_same_conv_repeatedly():
    conv = _conv()
    stack = WeightSharedConvStack(conv, num_repeats=3)
    x = torch.randn(2, 4, 5, 5)
    w, b = conv.conv.weight, conv.conv.bias
    expected = x
    for _ in range(3):
        expected = F.relu(F.conv2d(expected, w, b, padding=1))
    torch.testing.assert_close(stack(x), expected)
    # One conv's parameters, whatever the number of repeats.
    assert sum(p.numel() for p in stack.parameters()) == 4 * 4 * 9 + 4


def test_shortcut_is_a_resnet_unit_around_each_application():
    conv = _conv(norm_cfg=dict(type='GN', num_groups=2))
    stack = WeightSharedConvStack(conv, num_repeats=2, shortcut=True)
    x = torch.randn(2, 4, 5, 5)
    expected = x
    for _ in range(2):
        expected = F.relu(conv.gn(conv.conv(expected)) + expected)
    torch.testing.assert_close(stack(x), expected)
    # The identity path: an all-zero conv passes ReLU(x) through unchanged.
    for p in conv.parameters():
        torch.nn.init.zeros_(p)
    plain = WeightSharedConvStack(_conv(), num_repeats=2, shortcut=True)
    for p in plain.parameters():
        torch.nn.init.zeros_(p)
    torch.testing.assert_close(plain(x), F.relu(x))


def test_every_application_reaches_the_gradient():
    conv = _conv()
    x = torch.randn(1, 4, 5, 5)
    grads = []
    for repeats in (1, 2):
        conv.zero_grad()
        WeightSharedConvStack(conv, num_repeats=repeats)(x).sum().backward()
        grads.append(conv.conv.weight.grad.clone())
    assert grads[1].abs().sum() > 0
    assert not torch.allclose(grads[0], grads[1])


@pytest.mark.parametrize('num_repeats', [0, -1, 2.0, True])
def test_bad_num_repeats_is_named(num_repeats):
    message = f'num_repeats must be a positive int, got {num_repeats!r}'
    with pytest.raises(ValueError, match=message):
        WeightSharedConvStack(_conv(), num_repeats=num_repeats)


def test_a_conv_that_changes_channels_cannot_be_shared():
    with pytest.raises(ValueError, match=r'in_channels \(4\) must equal out_channels \(8\)'):
        WeightSharedConvStack(ConvModule(4, 8, 3, padding=1), num_repeats=2)
