"""Tests of the RoI mask heads with IFR: ``IFRConvFCMaskHead`` and ``IFRHTCMaskHead``."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmdet.models import FCNMaskHead, HTCMaskHead
from mmdet.registry import MODELS
from mmifr.engine.hooks import find_refiners
from mmifr.models.layers import IFRRefiner
from mmifr.models.roi_heads import (IFRConvFCMaskHead, IFRHTCMaskHead, SmallInitFCNMaskHead,
                                    SmallInitHTCMaskHead)

#: A few solver steps: the shape tests do not need a converged solve.
FAST_SOLVER = dict(solver='broyden', max_iter=3, backward_max_iter=3)


def _n_params(module):
    return sum(p.numel() for p in module.parameters())


def _ifr_head(**ifr_cfg):
    return MODELS.build(
        dict(type='IFRConvFCMaskHead', num_classes=80, ifr_cfg=dict(type='IFRRefiner', **ifr_cfg)))


def _block_params(c=256, mid=256):
    """Two weight-normed 3x3 convs (weights + one magnitude per output
    channel, no bias) and three GroupNorms (GN1 over ``mid``, GN2/GN3 over ``c``)."""
    convs = (c * mid * 9 + mid) + (mid * c * 9 + c)
    return convs + 2 * mid + 2 * c + 2 * c


#: Deconv upsampling (256 -> 256, 2x2) and the 1x1 logits conv (80 classes).
_UPSAMPLE_AND_LOGITS = (256 * 256 * 4 + 256) + (256 * 80 + 80)


def test_ifr_mask_head_has_1_46m_parameters():
    head = _ifr_head()
    assert isinstance(head, IFRConvFCMaskHead)
    assert _n_params(head) == _block_params() + _UPSAMPLE_AND_LOGITS == 1_464_656
    # Table 6's P(M) for the implicit head.
    assert round(_n_params(head) / 1e6, 1) == 1.5
    # Everything but the tower is mmdet's.
    stock = FCNMaskHead(num_classes=80)
    assert _n_params(head) - _n_params(head.convs) == _n_params(stock) - _n_params(stock.convs)


def test_explicit_four_block_head_has_5_0m_parameters():
    head = _ifr_head(mode='explicit', num_steps=4)
    assert _n_params(head) == 4 * _block_params() + _UPSAMPLE_AND_LOGITS == 5_009_744
    assert round(_n_params(head) / 1e6, 1) == 5.0  # Table 6, "explicit"


def test_table9_mid_channel_variants():
    """P(M) of Table 9: 0.4 / 0.6 / 0.9 / 1.5 / 2.6 M for X/8 ... 2X."""
    paper = {32: 0.4, 64: 0.6, 128: 0.9, 256: 1.5, 512: 2.6}
    counts = {}
    for mid, p_m in paper.items():
        head = _ifr_head(block=dict(type='DoubleResidualBlock', mid_channels=mid))
        counts[mid] = _n_params(head)
        assert counts[mid] == _block_params(mid=mid) + _UPSAMPLE_AND_LOGITS
        assert round(counts[mid] / 1e6, 1) == p_m, (mid, counts[mid])
    ordered = [counts[m] for m in sorted(counts)]
    assert ordered == sorted(ordered) and len(set(ordered)) == len(ordered)


def test_tower_is_one_refiner_with_the_tower_channels():
    head = MODELS.build(
        dict(type='IFRConvFCMaskHead', num_classes=3, in_channels=64, conv_out_channels=32))
    refiners = find_refiners(head)
    assert list(refiners) == ['convs.0'] and len(head.convs) == 1
    refiner = refiners['convs.0']
    assert isinstance(refiner, IFRRefiner)
    # The first replaced conv read 64 channels, the last wrote 32.
    assert (refiner.in_channels, refiner.channels) == (64, 32)
    assert refiner.inject is not None


@pytest.mark.parametrize('n', [0, 3], ids=['N=0', 'N=3'])
@pytest.mark.parametrize('mode', ['deq', 'unroll', 'explicit'])
def test_output_shapes_equal_mmdet_head(n, mode):
    torch.manual_seed(0)
    stock = FCNMaskHead(num_classes=80).eval()
    head = _ifr_head(mode=mode, solver=FAST_SOLVER).eval()
    x = torch.randn(n, 256, 14, 14)
    with torch.no_grad():
        expected, out = stock(x), head(x)
    assert out.shape == expected.shape == (n, 80, 28, 28)
    assert torch.isfinite(out).all()


def test_zero_rois_train_forward_backward():
    head = _ifr_head(solver=FAST_SOLVER).train()
    x = torch.randn(0, 256, 14, 14, requires_grad=True)
    out = head(x)
    assert out.shape == (0, 80, 28, 28)
    out.sum().backward()
    block = find_refiners(head)['convs.0'].block
    assert all(p.grad is not None and not p.grad.any() for p in block.parameters())


def test_init_weights_keeps_the_block_kaiming_init():
    """mmdet's head init (Kaiming on upsample/logits) must not touch the block."""
    torch.manual_seed(0)
    head = _ifr_head()
    head.init_weights()
    block = find_refiners(head)['convs.0'].block
    expected = math.sqrt(2 / (256 * 9))
    for conv in (block.conv1, block.conv2):
        assert abs(conv.weight.detach().std().item() / expected - 1) < 0.05


def _initial_mask_loss(head_cfg, seed=0):
    """BCE mask loss of a freshly initialised head (4 classes, as the demo)
    on RoI features of the demo's scale (rms 0.6) against a fixed random
    target: what the first training iterations start from."""
    torch.manual_seed(seed)
    head = MODELS.build(dict(num_classes=4, **head_cfg))
    head.init_weights()
    generator = torch.Generator().manual_seed(1)
    x = 0.6 * torch.randn(32, 256, 14, 14, generator=generator)
    target = (torch.rand(32, 28, 28, generator=generator) > 0.5).float()
    labels = torch.randint(0, 4, (32, ), generator=generator)
    with torch.no_grad():
        logits = head(x)[torch.arange(32), labels]
    return F.binary_cross_entropy_with_logits(logits, target).item()


IFR_FAST = dict(type='IFRConvFCMaskHead', ifr_cfg=dict(type='IFRRefiner', solver=FAST_SOLVER))


def test_ifr_mask_head_starts_at_the_stock_heads_mask_loss():
    """The IFR refiner ends in GroupNorm (unit scale) where a conv tower keeps
    its input's scale; with mmdet's Kaiming predictor init that doubled the
    IFR head's initial logits (demo: loss 2.2 against 1.3). Both heads now
    start near ln 2, within 0.02 of each other."""
    stock = _initial_mask_loss(dict(type='SmallInitFCNMaskHead'))
    ifr = _initial_mask_loss(IFR_FAST)
    assert abs(stock - math.log(2)) < 0.02
    assert abs(ifr - stock) < 0.02
    # The handicap this guards against: mmdet's predictor init on both.
    mmdet_stock = _initial_mask_loss(dict(type='FCNMaskHead'))
    mmdet_ifr = _initial_mask_loss(dict(IFR_FAST, predictor_init_std=None))
    assert mmdet_ifr > 1.3 * mmdet_stock > 1.3 * math.log(2)


def test_predictor_init_touches_the_predictor_weights_only():
    torch.manual_seed(0)
    stock = SmallInitFCNMaskHead(num_classes=4)
    stock.init_weights()
    torch.manual_seed(0)
    mmdet = FCNMaskHead(num_classes=4)
    mmdet.init_weights()
    assert abs(stock.conv_logits.weight.std().item() / 1e-3 - 1) < 0.1
    assert not stock.conv_logits.bias.any()
    for name, param in mmdet.named_parameters():
        if not name.startswith('conv_logits.'):
            assert torch.equal(param, stock.get_parameter(name)), name
    with pytest.raises(ValueError, match='predictor_init_std must be a positive float or None, '
                       'got -1'):
        SmallInitFCNMaskHead(num_classes=4, predictor_init_std=-1)


@pytest.mark.parametrize('with_conv_res', [True, False], ids=['conv_res', 'first-stage'])
def test_small_init_htc_head_is_mmdets_but_for_the_predictor_init(with_conv_res):
    """The stock side of the HTC demo pair: mmdet's HTCMaskHead (its residual
    conv included) whose predictor starts as IFRHTCMaskHead's."""
    cfg = dict(num_classes=4, with_conv_res=with_conv_res)
    torch.manual_seed(0)
    stock = MODELS.build(dict(type='SmallInitHTCMaskHead', **cfg))
    stock.init_weights()
    torch.manual_seed(0)
    mmdet = HTCMaskHead(**cfg)
    mmdet.init_weights()
    assert isinstance(stock, SmallInitHTCMaskHead) and isinstance(stock, HTCMaskHead)
    assert abs(stock.conv_logits.weight.std().item() / 1e-3 - 1) < 0.1
    assert not stock.conv_logits.bias.any()
    assert [n for n, _ in stock.named_parameters()] == [n for n, _ in mmdet.named_parameters()]
    for name, param in mmdet.named_parameters():
        if not name.startswith('conv_logits.'):
            assert torch.equal(param, stock.get_parameter(name)), name
    # The IFR head initialises the same predictor the same way.
    ifr = MODELS.build(dict(type='IFRHTCMaskHead', **cfg))
    ifr.init_weights()
    assert ifr.init_predictors == stock.init_predictors == ('conv_logits', )
    assert ifr.predictor_init_std == stock.predictor_init_std == 1e-3
    with pytest.raises(ValueError, match='predictor_init_std must be a positive float or None'):
        SmallInitHTCMaskHead(num_classes=4, predictor_init_std=0)


def _htc_pair(with_conv_res=True, channels=256):
    torch.manual_seed(0)
    cfg = dict(
        num_classes=80,
        with_conv_res=with_conv_res,
        in_channels=channels,
        conv_out_channels=channels)
    stock = HTCMaskHead(**cfg).eval()
    head = MODELS.build(
        dict(type='IFRHTCMaskHead', ifr_cfg=dict(type='IFRRefiner', solver=FAST_SOLVER),
             **cfg)).eval()
    return stock, head


@pytest.mark.parametrize('n', [0, 2], ids=['N=0', 'N=2'])
def test_htc_head_return_variants_match_mmdet(n):
    stock, head = _htc_pair()
    assert isinstance(head, IFRHTCMaskHead)
    x, res = torch.randn(n, 256, 14, 14), torch.randn(n, 256, 14, 14)
    with torch.no_grad():
        for kwargs in (dict(), dict(return_logits=False), dict(return_feat=False)):
            expected, out = stock(x, res, **kwargs), head(x, res, **kwargs)
            if isinstance(expected, list):
                assert isinstance(out, list)
                assert [o.shape for o in out] == [e.shape for e in expected]
            else:
                assert torch.is_tensor(out) and out.shape == expected.shape
        # [logits, res_feat] by default.
        logits, feat = head(x, res)
    assert logits.shape == (n, 80, 28, 28) and feat.shape == (n, 256, 14, 14)


def test_htc_head_res_feat_flow():
    """``res_feat`` enters before the refiner (``X + conv_res(res)``), and the
    returned feature is the refined ``H*`` that the next stage receives."""
    _, head = _htc_pair(channels=32)
    refiner = find_refiners(head)['convs.0']
    x, res = torch.randn(2, 32, 14, 14), torch.randn(2, 32, 14, 14)
    with torch.no_grad():
        feat = head(x, res, return_logits=False)
        expected = refiner(x + head.conv_res(res))
        torch.testing.assert_close(feat, expected)
        # The feature depends on the previous stage's.
        other = head(x, torch.randn(2, 32, 14, 14), return_logits=False)
        assert not torch.allclose(feat, other)
        # Logits are computed from that same feature.
        logits = head(x, res, return_feat=False)
        torch.testing.assert_close(logits, head.conv_logits(head.relu(head.upsample(feat))))


def test_htc_head_without_conv_res_takes_no_res_feat():
    _, head = _htc_pair(with_conv_res=False, channels=32)
    x = torch.randn(1, 32, 14, 14)
    with torch.no_grad():
        assert head(x, return_logits=False).shape == (1, 32, 14, 14)
    with pytest.raises(AssertionError):
        head(x, torch.randn(1, 32, 14, 14))


@pytest.mark.parametrize('head_type', ['IFRConvFCMaskHead', 'IFRHTCMaskHead'])
@pytest.mark.parametrize('key,value', [('channels', 128), ('in_channels', 64)])
def test_ifr_cfg_channel_mismatch_raises(head_type, key, value):
    cfg = dict(type=head_type, num_classes=80, ifr_cfg=dict(type='IFRRefiner', **{key: value}))
    with pytest.raises(ValueError, match=rf'ifr_cfg\.{key}={value} does not match .*convs'):
        MODELS.build(cfg)
    # Matching values are accepted.
    MODELS.build(dict(cfg, ifr_cfg=dict(type='IFRRefiner', **{key: 256})))


@pytest.mark.parametrize('head_type', ['IFRConvFCMaskHead', 'IFRHTCMaskHead'])
def test_no_convs_to_replace_raises(head_type):
    with pytest.raises(ValueError, match=rf'{head_type}: .*`convs`.*num_convs=0'):
        MODELS.build(dict(type=head_type, num_classes=80, num_convs=0))


@pytest.mark.parametrize('head_type', ['IFRConvFCMaskHead', 'IFRHTCMaskHead'])
def test_mask_heads_default_to_the_cheaper_inference_solve(head_type):
    from mmifr.models.roi_heads.mask_heads.ifr_conv_fc_mask_head import MASK_HEAD_TEST_SOLVER

    def refiner(**ifr_cfg):
        head = MODELS.build(
            dict(type=head_type, num_classes=80, ifr_cfg=dict(type='IFRRefiner', **ifr_cfg)))
        (ref, ) = find_refiners(head).values()
        return ref

    assert MASK_HEAD_TEST_SOLVER == dict(tol=1e-2, output='fz')
    assert refiner().test_solver == MASK_HEAD_TEST_SOLVER and refiner().budget is None
    # The paper's protocol on request: the training solve at test time.
    assert refiner(test_solver=dict()).test_solver == {}
    assert refiner(test_solver=None).test_solver == {}
    assert refiner(test_solver=dict(max_iter=4)).test_solver == dict(max_iter=4)
    # A budget runs itself at inference: no solve to loosen.
    assert refiner(budget=2).test_solver == {}


def test_refiner_default_solve_is_the_papers_with_memory_bounds():
    ref = IFRRefiner()
    opts = ref.deq.options
    assert (opts['solver'], opts['max_iter'], opts['tol'], opts['backward_max_iter']) == \
        ('broyden', 15, 1e-3, 15)
    assert opts['solver_kwargs'] == opts['backward_solver_kwargs'] == dict(memory=5)
    assert opts['chunk_size'] == 64
    # The refiner alone (e.g. in the dense heads) keeps the training solve at test time.
    assert ref.test_solver == {}


def test_chunked_default_solve_matches_the_whole_batch_solve():
    torch.manual_seed(0)
    head = _ifr_head(solver=dict(FAST_SOLVER, chunk_size=3))
    whole = _ifr_head(solver=FAST_SOLVER)
    whole.load_state_dict(head.state_dict())
    x = torch.randn(7, 256, 14, 14)
    head.eval(), whole.eval()
    with torch.no_grad():
        torch.testing.assert_close(head(x), whole(x))
