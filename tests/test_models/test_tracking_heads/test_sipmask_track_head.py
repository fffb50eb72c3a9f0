"""Tests of ``SipMaskTrackHead``, SipMask's tracking branch."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmifr.engine.hooks import find_refiners
from mmifr.models.tracking_heads import IFRSipMaskTrackHead, SipMaskTrackHead

C, E, IMG = 8, 6, 64


def _head(type='SipMaskTrackHead', **kwargs):
    torch.manual_seed(0)
    cfg = dict(type=type, in_channels=C, feat_channels=C, stacked_convs=2, num_levels=3,
               embed_channels=E, norm_cfg=dict(type='GN', num_groups=4))
    head = MODELS.build(dict(cfg, **kwargs))
    head.init_weights()
    return head


def _feats(batch=1):
    return [torch.randn(batch, C, IMG // s, IMG // s) for s in (8, 16, 32, 64, 128)]


def test_embedding_map_is_at_the_first_levels_resolution():
    head = _head()
    assert len(head.track_convs) == 2
    assert head(_feats(2)).shape == (2, E, IMG // 8, IMG // 8)
    with pytest.raises(ValueError, match='num_levels=3.*2 levels'):
        head(_feats()[:2])
    with pytest.raises(ValueError, match='stacked_convs'):
        _head(stacked_convs=0)


def test_a_box_is_embedded_by_the_cell_of_its_centre():
    head = _head()
    embed_map = torch.arange(2 * 4 * 4, dtype=torch.float32).view(2, 4, 4)
    # Centres (12, 4) -> cell (x 1, y 0); (31, 31) -> (3, 3); (-8, 80) clamps to (0, 3).
    boxes = torch.tensor([[8., 0., 16., 8.], [30., 30., 32., 32.], [-10., 70., -6., 90.]])
    out = head.centre_embeddings(embed_map, boxes)
    expected = torch.stack([embed_map[:, 0, 1], embed_map[:, 3, 3], embed_map[:, 3, 0]])
    torch.testing.assert_close(out, expected)


def test_logits_lead_with_the_new_object_column():
    a, b = torch.tensor([[1., 0.], [0., 2.]]), torch.tensor([[3., 1.], [1., 1.], [0., 1.]])
    logits = SipMaskTrackHead.predict(a, b)
    torch.testing.assert_close(logits, torch.tensor([[0., 3., 1., 0.], [0., 2., 2., 2.]]))


def test_match_targets_are_one_plus_the_reference_index_or_zero():
    key_ids = torch.tensor([7, 3, 9, 3])
    ref_ids = torch.tensor([3, 5, 7])
    assert SipMaskTrackHead.match_targets(key_ids, ref_ids).tolist() == [3, 1, 0, 1]
    assert SipMaskTrackHead.match_targets(key_ids, ref_ids[:0]).tolist() == [0, 0, 0, 0]


def test_jitter_stays_within_its_fraction_of_the_box():
    head = _head(jitter=0.1)
    boxes = torch.tensor([[10., 20., 30., 60.]]).repeat(200, 1)
    out = head.jitter_boxes(boxes)
    ctr, wh = (out[:, :2] + out[:, 2:]) / 2, out[:, 2:] - out[:, :2]
    size = torch.tensor([20., 40.])
    assert ((ctr - torch.tensor([20., 40.])).abs() <= 0.1 * size + 1e-4).all()
    assert ((wh / size - 1).abs() <= 0.1 + 1e-4).all()
    assert (ctr - torch.tensor([20., 40.])).abs().max() > 0.05 * 20  # it does move


def test_loss_is_the_cross_entropy_over_the_reference_instances():
    head = _head(jitter=0.0)
    key_feats, ref_feats = _feats(), _feats()
    key_boxes = [torch.tensor([[0., 0., 16., 16.], [40., 40., 56., 56.], [20., 0., 30., 10.]])]
    key_ids = [torch.tensor([4, 8, 5])]
    ref = InstanceData(bboxes=torch.tensor([[40., 36., 56., 52.], [2., 2., 14., 14.]]),
                       instances_ids=torch.tensor([8, 4]))
    losses = head.loss(key_feats, ref_feats, key_boxes, key_ids, [ref])
    with torch.no_grad():
        k = head.centre_embeddings(head(key_feats)[0], key_boxes[0])
        r = head.centre_embeddings(head(ref_feats)[0], ref.bboxes)
    logits = torch.cat([torch.zeros(3, 1), k @ r.t()], 1)
    expected = F.cross_entropy(logits, torch.tensor([2, 1, 0]))
    torch.testing.assert_close(losses['loss_match'], expected)
    assert 0 <= losses['match_accuracy'] <= 100


def test_no_positives_give_a_zero_loss_that_keeps_the_graph():
    head = _head()
    ref = InstanceData(bboxes=torch.tensor([[0., 0., 8., 8.]]), instances_ids=torch.tensor([1]))
    losses = head.loss(_feats(), _feats(), [torch.zeros(0, 4)], [torch.zeros(0).long()], [ref])
    assert losses['loss_match'].item() == 0
    losses['loss_match'].backward()
    assert head.embed.weight.grad is not None


def test_ifr_head_replaces_the_tracking_convs():
    head = _head(type='IFRSipMaskTrackHead')
    assert isinstance(head, IFRSipMaskTrackHead)
    assert list(find_refiners(head)) == ['track_convs.0']
    assert head(_feats()).shape == (1, E, IMG // 8, IMG // 8)
