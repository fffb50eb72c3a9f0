"""Tests of :class:`mmifr.models.layers.DoubleResidualBlock`, the ``F(H; X)`` of IFR."""
import math

import pytest
import torch
from torch.nn.utils import parametrize

from mmdet.registry import MODELS
from mmifr.models.layers import DoubleResidualBlock


def _block(channels=16, **kwargs):
    torch.manual_seed(0)
    block = DoubleResidualBlock(channels, **kwargs)
    block.init_weights()
    return block


def _zero_second_conv(block):
    """Make ``W2`` output zeros, so ``F`` reduces to its shortcut structure.

    With weight norm the effective weight is ``g * v / ||v||``: zeroing the
    magnitude ``g`` zeroes the conv; GroupNorm of an all-zero map is its bias,
    0 at init.
    """
    with torch.no_grad():
        if block.weight_norm:
            block.conv2.parametrizations.weight.original0.zero_()
        else:
            block.conv2.weight.zero_()


@pytest.mark.parametrize('form', ['bounded', 'literal', 'plain'])
@pytest.mark.parametrize('mid_channels', [None, 8, 32], ids=['mid=C', 'mid=8', 'mid=32'])
def test_shapes(form, mid_channels):
    block = _block(16, mid_channels=mid_channels, form=form)
    h, x = torch.randn(3, 16, 14, 14), torch.randn(3, 16, 14, 14)
    assert block(h, x).shape == (3, 16, 14, 14)
    assert block.conv1.out_channels == (mid_channels or 16)
    assert block.conv2.in_channels == (mid_channels or 16)
    # Zero samples (an image without RoIs) pass through.
    assert block(h[:0], x[:0]).shape == (0, 16, 14, 14)


def test_registered_and_built_from_config():
    block = MODELS.build(dict(type='DoubleResidualBlock', channels=8, form='plain'))
    assert isinstance(block, DoubleResidualBlock) and block.form == 'plain'


def test_forms_follow_their_formulas():
    """With ``W2 = 0`` the three forms differ only by their shortcuts:

    bounded ``GN3(relu(0 + R))``, literal ``0 + R``, plain ``GN3(relu(0)) = 0``
    with ``R = H + X``.
    """
    h, x = torch.randn(2, 16, 7, 7), torch.randn(2, 16, 7, 7)
    r = h + x
    out = {}
    for form in ('bounded', 'literal', 'plain'):
        block = _block(16, form=form)
        _zero_second_conv(block)
        out[form] = block(h, x)
    gn3 = _block(16, form='bounded').norm3  # default affine: identity
    torch.testing.assert_close(out['literal'], r)
    torch.testing.assert_close(out['bounded'], gn3(torch.relu(r)))
    torch.testing.assert_close(out['plain'], torch.zeros_like(r))
    # The literal form has no trailing norm, the others have one.
    assert _block(16, form='literal').norm3 is None
    assert _block(16, form='plain').norm3 is not None


@pytest.mark.parametrize('form', ['bounded', 'plain'])
def test_trailing_groupnorm_keeps_unit_scale(form):
    """Whatever the input scale, bounded/plain outputs are unit-scale per group."""
    block = _block(16, form=form)
    out = block(100 * torch.randn(2, 16, 7, 7), 100 * torch.randn(2, 16, 7, 7))
    groups = out.view(2, 4, -1)  # default GN: 4 groups
    torch.testing.assert_close(groups.mean(-1), torch.zeros(2, 4), atol=1e-4, rtol=0)
    torch.testing.assert_close(groups.var(-1, unbiased=False), torch.ones(2, 4), atol=1e-3, rtol=0)


def _iterate(block, x, steps):
    """``steps`` plain fixed-point iterations ``H <- F(H; X)`` from ``H = 0``."""
    h = torch.zeros_like(x)
    with torch.no_grad():
        for _ in range(steps):
            h = block(h, x)
        fh = block(h, x)
    norm = lambda t: t.flatten(1).norm(dim=1)  # noqa: E731
    return dict(growth=norm(h) / norm(x), abs_res=norm(fh - h), rel_res=norm(fh - h) / norm(fh))


def test_literal_form_is_unbounded_and_bounded_form_converges():
    """The measured reason the bounded form is the default.

    On RoI-like inputs (unit-scale 14x14 maps; 64 channels behave like 256
    here and cost 1/16 of the time) the literal
    Eq. 5 ``F = W2(relu(W1(R))) + R`` has Jacobian ``I + J_W``: each step adds
    at least ``X`` again, so after 30 plain iterations ``|H| / |X|`` is ~40
    and the step ``|F(H) - H|`` is as large as ``|X|``. The bounded form is a
    contraction at init: 30 iterations reach a relative residual ~1e-4 with
    ``|H| ~ |X|``.
    """
    torch.manual_seed(1)
    x = torch.randn(2, 64, 14, 14)
    literal = _iterate(_block(64, form='literal'), x, 30)
    bounded = _iterate(_block(64, form='bounded'), x, 30)
    x_norm = x.flatten(1).norm(dim=1)
    assert (literal['growth'] > 20).all(), literal['growth']
    # Not converging: the last step is still at least as large as |X|.
    assert (literal['abs_res'] > x_norm).all()
    assert (bounded['growth'] < 2).all(), bounded['growth']
    assert (bounded['rel_res'] < 1e-3).all(), bounded['rel_res']
    assert (bounded['abs_res'] < 1e-2 * x_norm).all()


def test_bad_form_raises():
    with pytest.raises(ValueError, match=r"form='residual'.*allowed values.*bounded"):
        DoubleResidualBlock(16, form='residual')


@pytest.mark.parametrize(
    'kwargs,message', [
        (dict(channels=18), 'channels=18 is not divisible by the GroupNorm num_groups=4'),
        (dict(channels=16, mid_channels=30), 'mid_channels=30 is not divisible .* num_groups=4'),
        (dict(channels=64, mid_channels=48, norm_cfg=dict(
            type='GN', num_groups=32)), 'mid_channels=48 is not divisible .* num_groups=32'),
    ],
    ids=['channels', 'mid_channels', 'configured-groups'])
def test_groupnorm_divisibility_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DoubleResidualBlock(**kwargs)


def test_groupnorm_divisibility_uses_configured_groups():
    # 36 % 4 == 0 but 36 % 8 != 0: the check must read the config's groups.
    DoubleResidualBlock(36)
    with pytest.raises(ValueError, match='channels=36'):
        DoubleResidualBlock(36, norm_cfg=dict(type='GN', num_groups=8))


def test_weight_norm_parametrizes_both_convs():
    block = _block(16)
    for conv in (block.conv1, block.conv2):
        assert parametrize.is_parametrized(conv, 'weight')
        assert conv.bias is None
    names = {n for n, _ in block.named_parameters()}
    assert 'conv1.parametrizations.weight.original0' in names  # magnitude g
    assert 'conv1.parametrizations.weight.original1' in names  # direction v
    plain = _block(16, weight_norm=False)
    assert not parametrize.is_parametrized(plain.conv1)
    assert not parametrize.is_parametrized(plain.conv2)
    # Same number of weights either way, plus one magnitude per output channel.
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(block) - n(plain) == 2 * 16


@pytest.mark.parametrize('weight_norm', [True, False], ids=['weight_norm', 'no_weight_norm'])
def test_init_makes_effective_weight_the_kaiming_draw(weight_norm):
    """``init_weights`` sets ``v`` to a Kaiming draw and ``g = ||v||``, so the
    effective weight ``g v / ||v||`` is exactly that draw."""
    block = DoubleResidualBlock(16, mid_channels=8, weight_norm=weight_norm)
    torch.manual_seed(123)
    block.init_weights()
    torch.manual_seed(123)
    draws = []
    for conv in (block.conv1, block.conv2):
        w = torch.empty(conv.weight.shape)
        torch.nn.init.kaiming_normal_(w, mode='fan_out', nonlinearity='relu')
        draws.append(w)
    for conv, w in zip((block.conv1, block.conv2), draws):
        torch.testing.assert_close(conv.weight.detach(), w)
        if weight_norm:
            wn = conv.parametrizations.weight
            torch.testing.assert_close(wn.original1.detach(), w)
            torch.testing.assert_close(wn.original0.detach().flatten(), w.flatten(1).norm(dim=1))


def test_init_has_kaiming_scale():
    """The effective weight's std is Kaiming's ``sqrt(2 / fan_out)``, not the
    ``||v|| = 1`` rows a bare weight-norm init would give."""
    block = _block(256)
    expected = math.sqrt(2 / (256 * 9))
    for conv in (block.conv1, block.conv2):
        assert abs(conv.weight.detach().std().item() / expected - 1) < 0.02


@pytest.mark.parametrize('weight_norm', [True, False], ids=['weight_norm', 'no_weight_norm'])
def test_pytorch_conv_init_keeps_the_construction_draw(weight_norm):
    """``conv_init='pytorch'`` (the released code's) leaves ``nn.Conv2d``'s
    own draw, std ``1 / sqrt(3 fan_in)``, and the forward is unchanged by the
    conv scale: GroupNorm follows each conv."""
    torch.manual_seed(5)
    block = DoubleResidualBlock(256, conv_init='pytorch', weight_norm=weight_norm)
    before = [conv.weight.detach().clone() for conv in (block.conv1, block.conv2)]
    block.init_weights()
    expected = 1 / math.sqrt(3 * 256 * 9)
    for conv, w in zip((block.conv1, block.conv2), before):
        torch.testing.assert_close(conv.weight.detach(), w)
        assert abs(conv.weight.detach().std().item() / expected - 1) < 0.02
    scaled = DoubleResidualBlock(256, weight_norm=False)
    with torch.no_grad():
        for ours, theirs in ((block.conv1, scaled.conv1), (block.conv2, scaled.conv2)):
            theirs.weight.copy_(ours.weight * 2.5)
    h, x = torch.randn(2, 256, 7, 7), torch.randn(2, 256, 7, 7)
    torch.testing.assert_close(block(h, x), scaled(h, x), atol=1e-4, rtol=1e-4)


def test_bad_conv_init_raises():
    with pytest.raises(ValueError, match=r"conv_init='xavier'.*allowed values.*pytorch"):
        DoubleResidualBlock(16, conv_init='xavier')


@pytest.mark.parametrize('gain', [0.0, 0.5, 1.0])
def test_branch_gain_init_sets_the_conv_branch_gain(gain):
    """``branch_gain_init`` is the start value of ``norm2``'s weight, the gain
    with which the conv branch enters the sum; the other norms keep 1."""
    block = _block(16, branch_gain_init=gain)
    assert torch.all(block.norm2.weight == gain)
    assert torch.all(block.norm1.weight == 1) and torch.all(block.norm3.weight == 1)


def test_zero_branch_gain_starts_as_the_pointwise_map():
    """At gain 0 (mmdet's ``zero_init_residual``) the block starts as
    ``GN3(relu(H + X))``: no spatial mixing but GroupNorm's statistics."""
    block = _block(16, branch_gain_init=0.0)
    h, x = torch.randn(2, 16, 9, 9), torch.randn(2, 16, 9, 9)
    torch.testing.assert_close(block(h, x), block.norm3(torch.relu(h + x)))


def _fixed_point_profile(block, x):
    """Broyden steps to tol 1e-3, and the locality of ``H*`` as the mask-head
    probe measures it (:func:`~tools.lib.mask_head_probe.tower_response`)."""
    from mmifr.ops import deq_fixed_point
    from tools.lib.mask_head_probe import tower_response
    with torch.no_grad():
        _, stats = deq_fixed_point(block, x, max_iter=40, tol=1e-3)
    exact = dict(max_iter=60, tol=1e-6, solver_kwargs=dict(memory=60))
    locality = tower_response(lambda v: deq_fixed_point(block, v, **exact)[0], x)['locality']
    return stats.forward.nstep.float().mean().item(), locality


def test_lower_branch_gain_starts_a_better_conditioned_more_local_fixed_point():
    """The reason for ``branch_gain_init < 1`` (docs/ifr_vs_stock_head.md): at
    the paper's init the fixed point needs more than the 15-step budget and
    mixes the whole RoI; at half gain it is reached within the budget and a
    local change of ``X`` stays local, as in a trained block."""
    torch.manual_seed(0)
    x = 0.8 * torch.randn(8, 64, 14, 14)
    steps_full, local_full = _fixed_point_profile(_block(64).eval(), x)
    steps_half, local_half = _fixed_point_profile(_block(64, branch_gain_init=0.5).eval(), x)
    assert steps_full > 15 >= steps_half
    assert local_half > 1.5 * local_full


@pytest.mark.parametrize('gain', [-0.1, True, 'half', None])
def test_bad_branch_gain_init_raises(gain):
    with pytest.raises(ValueError, match=r'branch_gain_init must be a float >= 0'):
        DoubleResidualBlock(16, branch_gain_init=gain)


@pytest.mark.parametrize('gain', [0.5, 0.7, 1.0])
def test_out_gain_init_sets_the_scale_of_the_output(gain):
    """``out_gain_init`` is the start value of ``norm3``'s weight: the output
    has rms ``gain`` (GroupNorm's output is unit scale per group, bias 0)."""
    block = _block(16, out_gain_init=gain)
    assert torch.all(block.norm3.weight == gain)
    assert torch.all(block.norm1.weight == 1) and torch.all(block.norm2.weight == 1)
    out = block(torch.randn(2, 16, 9, 9), torch.randn(2, 16, 9, 9))
    assert out.pow(2).mean().sqrt().item() == pytest.approx(gain, rel=1e-3)


@pytest.mark.parametrize('kwargs,message', [
    (dict(out_gain_init=-0.1), r'out_gain_init must be a float >= 0, got -0.1'),
    (dict(out_gain_init=True), r'out_gain_init must be a float >= 0, got True'),
    (dict(out_gain_init=0.5, form='literal'), r"out_gain_init=0.5 sets norm3, which "
     r"form='literal' does not have"),
])
def test_bad_out_gain_init_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DoubleResidualBlock(16, **kwargs)
