"""Tests of MEInst's heads: ``MEInstBboxHead`` (+ IFR) and ``MEInstMaskHead``."""
import math

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures.mask import BitmapMasks
from mmifr.engine.hooks import find_refiners
from mmifr.models.dense_heads import MEInstBboxHead
from mmifr.models.utils import centerness_of_points
from mmifr.models.task_modules import PCAMaskStatistics

S, IMG = 6, 16


def _n_params(module):
    return sum(p.numel() for p in module.parameters())


def _bbox_head(type='MEInstBboxHead', **kwargs):
    torch.manual_seed(0)
    gn = dict(type='GN', num_groups=8)
    head = MODELS.build(dict(type=type, num_classes=3, in_channels=32, feat_channels=32,
                             stacked_convs=2, strides=[8, 16], norm_cfg=gn, **kwargs))
    head.init_weights()
    return head


def test_bbox_head_adds_a_mask_tower_and_coefficients():
    head = _bbox_head(num_params=7)
    assert isinstance(head, MEInstBboxHead) and len(head.mask_convs) == 2
    assert not hasattr(head, 'controller')
    feats = [torch.randn(2, 32, 8, 8), torch.randn(2, 32, 4, 4)]
    cls_scores, bbox_preds, centernesses, coeffs = head(feats)
    assert [c.shape for c in coeffs] == [(2, 7, 8, 8), (2, 7, 4, 4)]
    assert cls_scores[0].shape == (2, 3, 8, 8) and centernesses[1].shape == (2, 1, 4, 4)
    # The coefficients read the mask tower, not the regression tower.
    coeffs[0].sum().backward()
    assert head.mask_convs[0].conv.weight.grad.abs().sum() > 0
    assert head.reg_convs[0].conv.weight.grad is None


def test_ifr_bbox_head_replaces_the_mask_tower_or_the_chosen_ones():
    stock = _bbox_head()
    only_mask = _bbox_head(type='IFRMEInstBboxHead')
    assert list(find_refiners(only_mask)) == ['mask_convs.0']
    ifr = _bbox_head(type='IFRMEInstBboxHead', ifr_towers=('mask_convs', 'cls_convs', 'reg_convs'))
    assert sorted(find_refiners(ifr)) == ['cls_convs.0', 'mask_convs.0', 'reg_convs.0']
    tower = _n_params(stock.mask_convs)
    assert _n_params(stock) - _n_params(only_mask) == tower - _n_params(only_mask.mask_convs)
    feats = [torch.randn(1, 32, 8, 8), torch.randn(1, 32, 4, 4)]
    assert [c.shape for c in ifr(feats)[3]] == [(1, 60, 8, 8), (1, 60, 4, 4)]


def test_centerness_of_points_is_fcos():
    boxes = torch.tensor([[0., 0., 4., 8.]]).repeat(3, 1)
    points = torch.tensor([[2., 4.], [1., 4.], [1., 2.]])
    expected = torch.tensor([1.0, math.sqrt(1 / 3), math.sqrt(1 / 3 * 2 / 6)])
    torch.testing.assert_close(centerness_of_points(points, boxes), expected)
    assert centerness_of_points(torch.tensor([[5., 4.]]), boxes[:1]) == 0


def _mask_head():
    head = MODELS.build(dict(type='MEInstMaskHead',
                             mask_coder=dict(type='PCAMaskCoder', dim=S * S, mask_size=S),
                             test_cfg=dict(mask_thr=0.5)))
    g = torch.Generator().manual_seed(1)
    stats = PCAMaskStatistics(S)
    stats.update((torch.rand(400, S, S, generator=g) > 0.5).float())
    head.mask_coder.load_pca(stats.pca(S * S))
    return head


def _gt_box_instance():
    """One instance filling its box (2, 2, 10, 10) in a 16x16 image."""
    mask = np.zeros((1, IMG, IMG), dtype=np.uint8)
    mask[0, 2:10, 2:10] = 1
    return InstanceData(bboxes=torch.tensor([[2., 2., 10., 10.]]), labels=torch.tensor([1]),
                        masks=BitmapMasks(mask, IMG, IMG))


def test_mask_loss_is_centerness_weighted_mse_of_the_encoded_box_crop():
    head = _mask_head()
    gt = _gt_box_instance()
    preds = torch.randn(3, S * S, requires_grad=True)
    info = InstanceData(param_preds=preds, points=torch.tensor([[6., 6.], [4., 6.], [3., 3.]]),
                        pos_assigned_gt_inds=torch.tensor([0, 0, 0]))
    empty = InstanceData(param_preds=torch.zeros(0, S * S), points=torch.zeros(0, 2),
                         pos_assigned_gt_inds=torch.zeros(0, dtype=torch.long))
    losses = head.loss_by_feat([preds, empty.param_preds], [gt, _gt_box_instance()],
                               [{}, {}], [info, empty])
    target = head.mask_coder.encode(torch.ones(1, S, S))  # the crop fills its box
    w = centerness_of_points(info.points, gt.bboxes.repeat(3, 1))
    expected = (w[:, None] * (preds - target)**2).sum() / (w.sum() * S * S)
    torch.testing.assert_close(losses['loss_mask'], expected)
    losses['loss_mask'].backward()
    assert preds.grad.abs().sum() > 0


def test_no_positive_gives_a_zero_loss_in_the_graph():
    head = _mask_head()
    preds = torch.zeros(0, S * S, requires_grad=True)
    info = InstanceData(param_preds=preds, points=torch.zeros(0, 2),
                        pos_assigned_gt_inds=torch.zeros(0, dtype=torch.long))
    loss = head.loss_by_feat([preds], [_gt_box_instance()], [{}], [info])['loss_mask']
    assert loss == 0 and loss.requires_grad


@pytest.mark.parametrize('rescale', [False, True])
def test_predict_pastes_the_decoded_mask_into_its_box(rescale):
    head = _mask_head()
    coeffs = head.mask_coder.encode(torch.ones(1, S, S))
    # At rescale the boxes are in the resized image: half the original size.
    scale = 0.5 if rescale else 1.0
    results = InstanceData(bboxes=torch.tensor([[2., 2., 10., 10.]]) * scale,
                           scores=torch.tensor([0.9]), labels=torch.tensor([1]),
                           param_preds=coeffs)
    meta = dict(img_shape=(IMG, IMG), ori_shape=(IMG, IMG), scale_factor=(scale, scale))
    (out, ) = head.predict_by_feat([coeffs], [results], [meta], rescale=rescale)
    assert out.masks.shape == (1, IMG, IMG) and out.masks.dtype == torch.bool
    expected = torch.zeros(IMG, IMG, dtype=torch.bool)
    expected[2:10, 2:10] = True
    assert torch.equal(out.masks[0], expected)
    torch.testing.assert_close(out.bboxes, torch.tensor([[2., 2., 10., 10.]]))


def test_predict_without_detections():
    head = _mask_head()
    results = InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0),
                           labels=torch.zeros(0, dtype=torch.long),
                           param_preds=torch.zeros(0, S * S))
    meta = dict(img_shape=(IMG, IMG), ori_shape=(IMG, IMG), scale_factor=(1., 1.))
    (out, ) = head.predict_by_feat([results.param_preds], [results], [meta])
    assert len(out) == 0 and out.masks.shape == (0, IMG, IMG)
