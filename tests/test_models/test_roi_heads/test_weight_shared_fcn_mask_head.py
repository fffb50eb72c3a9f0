"""Tests of ``WeightSharedFCNMaskHead`` (the paper's Table 1, "4*")."""
import pytest
import torch

from mmdet.models import FCNMaskHead
from mmdet.registry import MODELS
from mmifr.models.layers import WeightSharedConvStack
from mmifr.models.roi_heads import WeightSharedFCNMaskHead


def _n_params(module):
    return sum(p.numel() for p in module.parameters())


def _head(**kwargs):
    torch.manual_seed(0)
    head = MODELS.build(dict(dict(type='WeightSharedFCNMaskHead', num_classes=80), **kwargs))
    head.init_weights()
    return head


def test_four_shared_convs_have_the_parameters_of_one():
    head, stock = _head(), FCNMaskHead(num_classes=80)
    one_conv = 256 * 256 * 9 + 256
    assert _n_params(head) == _n_params(stock) - 3 * one_conv == 873_040
    assert isinstance(head, WeightSharedFCNMaskHead)
    (stack, ) = head.convs
    assert isinstance(stack, WeightSharedConvStack) and stack.num_repeats == 4


def test_forward_is_mmdets_with_the_tower_applied_four_times():
    head = _head(num_convs=4)
    head.eval()
    x = torch.randn(3, 256, 14, 14)
    conv = head.convs[0].conv
    h = x
    for _ in range(4):
        h = conv(h)
    expected = head.conv_logits(head.relu(head.upsample(h)))
    out = head(x)
    assert out.shape == (3, 80, 28, 28)
    torch.testing.assert_close(out, expected)


def test_shortcut_changes_the_output_not_the_parameters():
    plain, skip = _head(), _head(shortcut=True)
    skip.load_state_dict(plain.state_dict())
    x = torch.randn(2, 256, 14, 14)
    assert skip.convs[0].shortcut and not plain.convs[0].shortcut
    assert not torch.allclose(plain(x), skip(x))


def test_predictor_init_small_by_default_mmdets_with_none():
    small, mmdet_init = _head(), _head(predictor_init_std=None)
    assert small.conv_logits.weight.std() < 2e-3
    # mmdet's Kaiming fan_out init: std sqrt(2 / 80) for 80 classes.
    assert mmdet_init.conv_logits.weight.std().item() == pytest.approx((2 / 80)**0.5, rel=0.05)


def test_one_training_step_reaches_the_shared_conv():
    head = _head(num_classes=2)
    x = torch.randn(4, 256, 14, 14)
    head(x).pow(2).mean().backward()
    grad = head.convs[0].conv.conv.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize('kwargs, message', [
    (dict(num_convs=0), r'num_convs must be >= 1 .*got 0'),
    (dict(in_channels=128), r'in_channels \(128\) must equal conv_out_channels \(256\)'),
])
def test_bad_configs_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MODELS.build(dict(type='WeightSharedFCNMaskHead', num_classes=80, **kwargs))
