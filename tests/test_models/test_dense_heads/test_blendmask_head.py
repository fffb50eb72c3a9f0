"""Tests of BlendMask's ``BlendMaskHead`` (+ IFR) and its blender."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures.mask import BitmapMasks
from mmifr.engine.hooks import find_refiners
from mmifr.models.dense_heads import BlendMaskHead, blend
from mmifr.models.utils import centerness_of_points

K, M, R, IMG = 2, 3, 8, 64


def test_blend_of_one_hot_attentions_picks_a_basis():
    bases = torch.randn(2, K, R, R)
    attn = torch.zeros(2, K, M, M)
    attn[0, 1] = 50.0  # softmax ~ one-hot on basis 1
    attn[1, 0] = 50.0
    out = blend(bases, attn)
    assert out.shape == (2, R, R)
    torch.testing.assert_close(out[0], bases[0, 1])
    torch.testing.assert_close(out[1], bases[1, 0])


def test_blend_of_uniform_attentions_is_the_mean_of_the_bases():
    bases = torch.randn(1, K, R, R)
    torch.testing.assert_close(blend(bases, torch.zeros(1, K, M, M)), bases.mean(1))


def test_blend_resizes_the_attention_bilinearly_before_the_softmax():
    bases = torch.randn(1, K, R, R)
    attn = torch.randn(1, K, M, M)
    weights = F.interpolate(attn, (R, R), mode='bilinear', align_corners=False).softmax(1)
    torch.testing.assert_close(blend(bases, attn), (bases * weights).sum(1))


def _head(type='BlendMaskHead', **kwargs):
    torch.manual_seed(0)
    head = MODELS.build(dict(dict(type=type, in_channels=16, feat_channels=8, num_bases=K,
                                  attn_size=M, bottom_resolution=R, num_classes=3), **kwargs))
    head.init_weights()
    return head


def _feats(batch=2):
    return tuple(torch.randn(batch, 16, IMG // s, IMG // s) for s in (8, 16, 32))


def test_bases_are_at_stride_4_and_the_semantic_head_at_stride_8():
    head = _head().train()
    bases, attns, semantic = head(_feats(), [InstanceData(param_preds=torch.zeros(0, K * M * M))] *
                                  2)
    assert bases.shape == (2, K, IMG // 4, IMG // 4)
    assert semantic.shape == (2, 4, IMG // 8, IMG // 8)
    head.eval()
    assert head(_feats(), [InstanceData(param_preds=torch.zeros(0, K * M * M))] * 2)[2] is None


def test_ifr_head_replaces_the_basis_tower():
    ifr = _head(type='IFRBlendMaskHead')
    assert list(find_refiners(ifr)) == ['basis_convs.0']
    stock = _head()
    conv = 8 * 8 * 9  # a 3x3 conv of the tower, bias-free (BN follows)
    assert sum(p.numel() for p in stock.basis_convs.parameters()) == 3 * (conv + 2 * 8)


def _gt():
    mask = np.zeros((1, IMG, IMG), dtype=np.uint8)
    mask[0, 8:24, 4:20] = 1
    return InstanceData(bboxes=torch.tensor([[4., 8., 20., 24.]]), labels=torch.tensor([2]),
                        masks=BitmapMasks(mask, IMG, IMG))


def test_mask_loss_is_the_centerness_weighted_bce_of_the_blended_gt_rois():
    head = _head().train()
    feats = _feats(1)
    attn = torch.randn(2, K * M * M, requires_grad=True)
    info = InstanceData(param_preds=attn, points=torch.tensor([[12., 16.], [8., 12.]]),
                        pos_assigned_gt_inds=torch.tensor([0, 0]))
    bases, attns, semantic = head(feats, [info])
    gt = _gt()
    losses = head.loss_by_feat(bases, attns, semantic, [gt], [{}], [info])
    rois = torch.tensor([[0., 4., 8., 20., 24.]] * 2)
    logits = blend(head.roi_align(bases, rois), attn.view(2, K, M, M))
    # The mask fills its box: the target crop is all ones.
    per_roi = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits),
                                                 reduction='none').flatten(1).mean(1)
    w = centerness_of_points(info.points, gt.bboxes.repeat(2, 1))
    torch.testing.assert_close(losses['loss_mask'], (per_roi * w).sum() / w.sum())
    # Semantic target: class + 1 inside the mask, 0 outside, at stride 8.
    target = torch.zeros(1, IMG // 8, IMG // 8, dtype=torch.long)
    target[0, 1:3, 1:3] = 3
    torch.testing.assert_close(losses['loss_semantic'], 0.3 * F.cross_entropy(semantic, target))
    sum(losses.values()).backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_no_positive_gives_a_zero_mask_loss_in_the_graph():
    head = _head().train()
    info = InstanceData(param_preds=torch.zeros(0, K * M * M), points=torch.zeros(0, 2),
                        pos_assigned_gt_inds=torch.zeros(0, dtype=torch.long))
    bases, attns, semantic = head(_feats(1), [info])
    losses = head.loss_by_feat(bases, attns, semantic, [_gt()], [{}], [info])
    assert losses['loss_mask'] == 0 and losses['loss_mask'].requires_grad


@pytest.mark.parametrize('num_dets', [0, 2])
def test_predict_pastes_blended_masks_into_the_detections(num_dets):
    head = _head().eval()
    attn = torch.randn(num_dets, K * M * M)
    results = InstanceData(bboxes=torch.tensor([[4., 8., 20., 24.], [0., 0., 10., 10.]])[:num_dets],
                           scores=torch.ones(num_dets), labels=torch.zeros(num_dets).long(),
                           param_preds=attn)
    meta = dict(img_shape=(IMG, IMG), ori_shape=(IMG, IMG), scale_factor=(1., 1.))
    with torch.no_grad():
        bases, attns, semantic = head(_feats(1), [results])
        (out, ) = head.predict_by_feat(bases, attns, semantic, [results], [meta])
    assert out.masks.shape == (num_dets, IMG, IMG) and out.masks.dtype == torch.bool
    if num_dets:
        # Nothing outside the boxes.
        assert not out.masks[0, :, 21:].any() and not out.masks[1, 11:].any()


def test_bad_num_convs_is_named():
    with pytest.raises(ValueError, match='num_convs must be >= 1, got 0'):
        BlendMaskHead(num_convs=0)
