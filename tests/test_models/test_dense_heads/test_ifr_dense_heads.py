"""Tests of the dense (one-stage) heads with IFR towers.

Each head is built from the head config of its project config
(``configs/ifr/*.py``, i.e. mmdet's settings of that framework) with the
channels shrunk to 32 and SOLO's grids made small, so the DEQ solves are
cheap; the stock mmdet head is the same config with the ``IFR`` prefix
dropped from the type.
"""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmifr.engine.hooks import find_refiners
from mmifr.models.layers import IFRRefiner

CONFIG_DIR = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs', 'ifr')
CH = 32
#: (H, W) of FPN levels P3-P7 (the box heads) and P2-P6 (SOLO) of a 64x64 image.
P3_P7 = [(8, 8), (4, 4), (2, 2), (1, 1), (1, 1)]
P2_P6 = [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]
SMALL_GRIDS = [8, 6, 4, 3, 2]

#: The channels of a head's input and towers.
NARROW = dict(in_channels=CH, feat_channels=CH)
#: CondInst/BoxInst mask heads: only the mask branch has a tower; the
#: dynamic-conv sizes (``feat_channels``, ``out_channels``) stay as configured
#: because the box head's ``num_params`` depends on them.
NARROW_MASK_BRANCH = dict(mask_feature_head=dict(in_channels=CH, feat_channels=CH))

# (test id, project config, model key, overrides, input levels)
HEADS = [
    ('retina', 'retinanet_r50_ifr_1x', 'bbox_head', NARROW, P3_P7),
    ('freeanchor', 'freeanchor_r50_ifr_1x', 'bbox_head', NARROW, P3_P7),
    ('fcos', 'fcos_r50_ifr_1x', 'bbox_head', NARROW, P3_P7),
    ('reppoints', 'reppoints_r50_ifr_1x', 'bbox_head', dict(NARROW, point_feat_channels=CH), P3_P7),
    ('solo', 'solo_r50_ifr_3x', 'mask_head', dict(NARROW, num_grids=SMALL_GRIDS), P2_P6),
    ('solov2', 'solov2_r50_ifr_3x', 'mask_head',
     dict(
         NARROW,
         num_grids=SMALL_GRIDS,
         mask_feature_head=dict(in_channels=CH, feat_channels=CH, out_channels=CH)), P2_P6),
    # The CondInst/BoxInst configs refine the mask branch only; their box
    # heads' refiners are an opt-in, named here by type.
    ('condinst_bbox', 'condinst_r50_ifr_1x', 'bbox_head', dict(NARROW, type='IFRCondInstBboxHead'),
     P3_P7),
    ('condinst_mask', 'condinst_r50_ifr_1x', 'mask_head', NARROW_MASK_BRANCH, P3_P7),
    ('boxinst_bbox', 'boxinst_r50_ifr_1x', 'bbox_head', dict(NARROW, type='IFRBoxInstBboxHead'),
     P3_P7),
    ('boxinst_mask', 'boxinst_r50_ifr_1x', 'mask_head', NARROW_MASK_BRANCH, P3_P7),
]
HEAD_IDS = [h[0] for h in HEADS]


def _head_cfgs(config, key, overrides):
    """The IFR head config of a project config, shrunk, and its stock twin."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, config + '.py'))
    head = cfg.model[key]
    for k, v in overrides.items():
        if isinstance(v, dict):
            head[k].update(v)
        else:
            head[k] = v
    assert head.type.startswith('IFR'), head.type
    head.setdefault('train_cfg', cfg.model.get('train_cfg'))
    head.setdefault('test_cfg', cfg.model.get('test_cfg'))
    return head, dict(head, type=head.type[len('IFR'):])


def _build_pair(config, key, overrides):
    ifr_cfg, stock_cfg = _head_cfgs(config, key, overrides)
    torch.manual_seed(0)
    ifr = MODELS.build(ifr_cfg)
    torch.manual_seed(0)
    stock = MODELS.build(stock_cfg)
    return ifr, stock


def _conv(module):
    return getattr(module, 'conv', module)


def _shapes(obj):
    """Nested tuples/lists of tensors -> the same nesting of shapes."""
    if torch.is_tensor(obj):
        return tuple(obj.shape)
    if isinstance(obj, (list, tuple)):
        return [_shapes(o) for o in obj]
    raise TypeError(type(obj))


def _feats(levels, batch=2, seed=0):
    torch.manual_seed(seed)
    return tuple(torch.randn(batch, CH, h, w) for h, w in levels)


def _positive_infos(num_params, counts=(3, 0)):
    """What CondInst's box head hands its mask head: per image the dynamic
    params, the points and the strides of the positive locations."""
    infos = []
    for n in counts:
        info = InstanceData()
        info.param_preds = 0.1 * torch.randn(n, num_params)
        info.points = torch.rand(n, 2) * 64
        info.strides = torch.full((n, ), 8.)
        infos.append(info)
    return infos


def _forward(head, feats, key):
    if type(head).__name__.endswith(('CondInstMaskHead', 'BoxInstMaskHead')):
        return head(feats, _positive_infos(head.num_params))
    return head(feats)


@pytest.mark.parametrize('name,config,key,overrides,levels', HEADS, ids=HEAD_IDS)
def test_towers_replaced_by_one_refiner_each(name, config, key, overrides, levels):
    ifr, stock = _build_pair(config, key, overrides)
    assert ifr.ifr_towers, 'an IFR head must name the towers it replaces'
    refiners = find_refiners(ifr)
    assert sorted(refiners) == sorted(f'{path}.0' for path in ifr.ifr_towers)
    for path in ifr.ifr_towers:
        container, tower = ifr.get_submodule(path), stock.get_submodule(path)
        assert len(container) == 1 and isinstance(container[0], IFRRefiner)
        assert len(tower) > 1, f'{path}: stock tower has {len(tower)} conv(s)'
        refiner = container[0]
        assert refiner.in_channels == _conv(tower[0]).in_channels
        assert refiner.channels == _conv(tower[-1]).out_channels
        # SOLO's coordinate channels (or any in != out) need the projection.
        assert (refiner.inject is not None) == (refiner.in_channels != refiner.channels)
        assert refiner.mode == 'deq'
    # Nothing else differs: the parameters outside the towers are mmdet's.
    outside = lambda head: {  # noqa: E731
        n: tuple(p.shape)
        for n, p in head.named_parameters()
        if not any(n.startswith(path + '.') for path in ifr.ifr_towers)
    }
    assert outside(ifr) == outside(stock)


@pytest.mark.parametrize('name,config,key,overrides,levels', HEADS, ids=HEAD_IDS)
def test_forward_shapes_equal_stock_head(name, config, key, overrides, levels):
    ifr, stock = _build_pair(config, key, overrides)
    ifr.eval(), stock.eval()
    feats = _feats(levels)
    with torch.no_grad():
        torch.manual_seed(1)
        expected = _forward(stock, feats, key)
        torch.manual_seed(1)
        out = _forward(ifr, feats, key)
    assert _shapes(out) == _shapes(expected)
    flat = [out] if torch.is_tensor(out) else [t for t in torch.utils._pytree.tree_leaves(out)]
    assert all(torch.isfinite(t).all() for t in flat)
    # Every refiner ran its solve on this input.
    for refiner in find_refiners(ifr).values():
        assert refiner.pop_stats(), 'refiner did not run'


@pytest.mark.parametrize('name,config,key,overrides,levels', HEADS, ids=HEAD_IDS)
def test_init_weights_keeps_block_kaiming_init(name, config, key, overrides, levels):
    """The heads' own init (e.g. ``Normal(layer='Conv2d', std=0.01)``) must
    not overwrite the IFR block's Kaiming init."""
    ifr, _ = _build_pair(config, key, overrides)
    ifr.init_weights()
    for refiner in find_refiners(ifr).values():
        expected = math.sqrt(2 / (refiner.channels * 9))
        for conv in (refiner.block.conv1, refiner.block.conv2):
            std = conv.weight.detach().std().item()
            assert abs(std / expected - 1) < 0.2, (conv, std, expected)


@pytest.mark.parametrize('config', ['retinanet_r50_ifr_1x', 'freeanchor_r50_ifr_1x'])
def test_retina_predictors_start_where_mmdet_meant_them(config):
    """RetinaNet's towers (no norm, N(0, 0.01) convs) shrink their input to
    rms ~0.01, so mmdet's classifier starts at the prior-probability logit and
    its regressor at ~0; the IFR towers end in GroupNorm (rms 1). With the
    predictors re-initialised N(0, 0.001) the IFR head starts there too."""
    def outputs(**head_overrides):
        ifr_cfg, _ = _head_cfgs(config, 'bbox_head', dict(NARROW, **head_overrides))
        ifr_cfg['ifr_cfg'] = dict(type='IFRRefiner', solver=dict(solver='broyden', max_iter=3))
        torch.manual_seed(0)
        head = MODELS.build(ifr_cfg)
        head.init_weights()
        with torch.no_grad():
            cls_scores, bbox_preds = head(_feats(P3_P7))
        return torch.cat([c.flatten() for c in cls_scores]), torch.cat(
            [b.flatten() for b in bbox_preds])

    prior_logit = -math.log((1 - 0.01) / 0.01)
    cls, reg = outputs()
    assert abs(cls.mean().item() - prior_logit) < 0.01
    assert cls.std().item() < 0.05 and reg.abs().max().item() < 0.2
    cls, reg = outputs(predictor_init_std=None)  # mmdet's init behind IFR towers
    assert cls.std().item() > 0.1 and reg.std().item() > 0.1
