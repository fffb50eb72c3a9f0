"""Tests of BMask R-CNN's mask heads: ``BoundaryPreservingMaskHead`` and its IFR variant."""
import pytest
import torch

from mmdet.models import FCNMaskHead
from mmdet.registry import MODELS
from mmifr.engine.hooks import find_refiners
from mmifr.models.roi_heads import (BoundaryPreservingMaskHead, IFRBoundaryPreservingMaskHead,
                                    laplacian_boundary_targets)

FAST_SOLVER = dict(solver='broyden', max_iter=3, backward_max_iter=3)


def _n_params(module):
    return sum(p.numel() for p in module.parameters())


def _conv(c_in, c_out, k):
    return c_in * c_out * k * k + c_out


def test_boundary_targets_are_the_inner_edge_of_a_square():
    mask = torch.zeros(1, 5, 5)
    mask[0, 1:4, 1:4] = 1
    expected = mask.clone()
    expected[0, 2, 2] = 0  # 8 - 8 neighbours = 0: the centre is no edge
    torch.testing.assert_close(laplacian_boundary_targets(mask), expected)


def test_boundary_targets_of_a_full_mask_are_the_image_border():
    # Zero padding: the pixels along the border have fewer than 8 neighbours.
    out = laplacian_boundary_targets(torch.ones(2, 4, 4))
    inner = torch.zeros(4, 4, dtype=torch.bool)
    inner[1:3, 1:3] = True
    assert out[:, inner].eq(0).all() and out[:, ~inner].eq(1).all()
    assert laplacian_boundary_targets(torch.zeros(1, 4, 4)).eq(0).all()


def test_boundary_target_threshold_drops_soft_edges():
    mask = torch.zeros(1, 5, 5)
    mask[0, 2, 2] = 0.01  # Laplacian 8 * 0.01 = 0.08 at the centre
    assert laplacian_boundary_targets(mask).eq(0).all()
    assert laplacian_boundary_targets(mask, threshold=0.05)[0, 2, 2] == 1


def _stock(**kwargs):
    torch.manual_seed(0)
    head = MODELS.build(dict(dict(type='BoundaryPreservingMaskHead', num_classes=80), **kwargs))
    head.init_weights()
    return head


def _ifr(**kwargs):
    return _stock(type='IFRBoundaryPreservingMaskHead',
                  ifr_cfg=dict(type='IFRRefiner', solver=FAST_SOLVER), **kwargs)


def test_stock_head_parameters():
    head = _stock()
    assert isinstance(head, BoundaryPreservingMaskHead)
    fcn = FCNMaskHead(num_classes=80)
    boundary = (_conv(256, 256, 3)  # stride-2 downsample
                + 2 * _conv(256, 256, 1)  # mask -> boundary, boundary -> mask
                + 2 * _conv(256, 256, 3)  # boundary convs
                + _conv(256, 256, 3)  # mask fusion
                + (256 * 256 * 4 + 256) + _conv(256, 80, 1))  # deconv + predictor
    assert _n_params(head) == _n_params(fcn) + boundary == 5_418_144


def test_ifr_head_replaces_the_mask_convs_only_by_default():
    stock, ifr = _stock(), _ifr()
    assert isinstance(ifr, IFRBoundaryPreservingMaskHead)
    assert list(find_refiners(ifr)) == ['convs.0']
    assert len(ifr.boundary_convs) == 2
    # The four mask convs (2.36 M) become one 1.18 M block.
    assert _n_params(stock) - _n_params(ifr) == 4 * _conv(256, 256, 3) - _n_params(ifr.convs)
    assert _n_params(ifr) == 4_239_520
    both = _ifr(ifr_towers=('convs', 'boundary_convs'))
    assert sorted(find_refiners(both)) == ['boundary_convs.0', 'convs.0']


@pytest.mark.parametrize('towers', [('convs', 'cls_convs'), 'convs', ('upsample', ), ()])
def test_bad_ifr_towers_are_named(towers):
    with pytest.raises(ValueError, match=r"ifr_towers=.*give one or more of \['convs', "
                       r"'boundary_convs'\]"):
        _ifr(ifr_towers=towers)


def test_a_branch_without_convs_is_rejected():
    with pytest.raises(ValueError, match=r'num_convs \(4\) and num_boundary_convs \(0\)'):
        _stock(num_boundary_convs=0)


@pytest.mark.parametrize('build', [_stock, _ifr], ids=['stock', 'ifr'])
@pytest.mark.parametrize('n', [0, 3], ids=['N=0', 'N=3'])
def test_forward_shapes(build, n):
    head = build().eval()
    with torch.no_grad():
        mask, boundary = head(torch.randn(n, 256, 14, 14), torch.randn(n, 256, 28, 28))
    assert mask.shape == boundary.shape == (n, 80, 28, 28)


def test_boundary_branch_reaches_the_mask_logits_and_back():
    head = _stock(num_classes=2)
    # A non-zero predictor so that the gradient reaches every layer.
    torch.nn.init.normal_(head.conv_logits.weight, std=0.1)
    torch.nn.init.normal_(head.boundary_logits.weight, std=0.1)
    x = torch.randn(2, 256, 14, 14, requires_grad=True)
    xb = torch.randn(2, 256, 28, 28, requires_grad=True)
    mask, boundary = head(x, xb)
    # The mask logits depend on the boundary features (boundary -> mask) ...
    assert torch.autograd.grad(mask.sum(), xb, retain_graph=True)[0].abs().sum() > 0
    # ... and the boundary logits on the mask features (mask -> boundary).
    assert torch.autograd.grad(boundary.sum(), x, retain_graph=True)[0].abs().sum() > 0
    (mask.sum() + boundary.sum()).backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_predictors_start_small_as_in_the_official_code():
    head = _stock()
    for layer in (head.conv_logits, head.boundary_logits):
        assert layer.weight.std().item() < 2e-3 and layer.bias.eq(0).all()
    mmdet_init = _stock(predictor_init_std=None)
    assert mmdet_init.boundary_logits.weight.std().item() == pytest.approx((2 / 80)**0.5, rel=0.05)
