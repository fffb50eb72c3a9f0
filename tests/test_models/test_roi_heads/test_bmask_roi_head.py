"""Tests of ``BMaskRoIHead`` (BMask R-CNN's RoI head) on small features."""
import copy
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from roi_head_inputs import roi_head_inputs
from mmdet.utils import register_all_modules
from mmifr.models.roi_heads import BMaskRoIHead, laplacian_boundary_targets

C, NUM_CLASSES, IMG = 16, 4, 64
REPO_ROOT = osp.join(osp.dirname(__file__), *[osp.pardir] * 3)
CONFIG = osp.join(REPO_ROOT, 'configs', 'ifr', 'bmask_rcnn_r50_1x.py')


@pytest.fixture(scope='module', autouse=True)
def _registries():
    register_all_modules()


def _roi_head(**kwargs):
    """The RoI head of configs/ifr/bmask_rcnn_r50_1x.py at 16 channels."""
    model = Config.fromfile(CONFIG).model
    cfg = model.roi_head
    cfg.update(train_cfg=model.train_cfg.rcnn, test_cfg=model.test_cfg.rcnn)
    for extractor in ('bbox_roi_extractor', 'mask_roi_extractor', 'boundary_roi_extractor'):
        cfg[extractor].out_channels = C
    cfg.bbox_head.update(in_channels=C, fc_out_channels=32, num_classes=NUM_CLASSES)
    cfg.mask_head.update(in_channels=C, conv_out_channels=C, boundary_in_channels=C,
                         num_classes=NUM_CLASSES)
    cfg.update(kwargs)
    torch.manual_seed(0)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def _inputs(num_items=(3, 2)):
    return roi_head_inputs(C, NUM_CLASSES, IMG, num_items)


def _sampling_results(head, feats, proposals, samples):
    results = []
    for i, (props, sample) in enumerate(zip(proposals, samples)):
        priors = InstanceData(priors=props.bboxes)
        assign = head.bbox_assigner.assign(priors, sample.gt_instances)
        results.append(head.bbox_sampler.sample(assign, priors, sample.gt_instances,
                                                feats=[f[i][None] for f in feats]))
    return results


def test_training_step_losses_and_gradients():
    head = _roi_head()
    assert isinstance(head, BMaskRoIHead)
    feats, proposals, samples = _inputs()
    losses = head.loss(feats, proposals, samples)
    for key in ('loss_cls', 'loss_bbox', 'loss_mask', 'loss_boundary_bce', 'loss_boundary_dice'):
        assert torch.isfinite(losses[key]) and losses[key] > 0, key
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    for name, p in head.mask_head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def _constant_deltas(head, delta):
    fc_reg = head.bbox_head.fc_reg
    torch.nn.init.zeros_(fc_reg.weight)
    with torch.no_grad():
        fc_reg.bias.copy_(torch.tensor(delta).repeat(NUM_CLASSES))


@pytest.mark.parametrize('on_pred_boxes', [True, False])
def test_mask_branch_trains_on_the_predicted_boxes(on_pred_boxes):
    head = _roi_head(train_mask_on_pred_boxes=on_pred_boxes)
    delta = [0.5, -0.5, 1.0, 0.0]
    _constant_deltas(head, delta)
    feats, proposals, samples = _inputs()
    results = _sampling_results(head, feats, proposals, samples)
    before = [r.pos_priors.clone() for r in results]
    head.bbox_loss(feats, results)
    for res, priors in zip(results, before):
        if on_pred_boxes:
            expected = head.bbox_head.bbox_coder.decode(
                priors, torch.tensor(delta).expand(len(priors), 4))
            torch.testing.assert_close(res.pos_priors, expected)
            assert not res.pos_priors.requires_grad
            # The negatives stay where they were.
            assert not torch.equal(res.pos_priors, priors)
        else:
            torch.testing.assert_close(res.pos_priors, priors)


def test_boundary_loss_is_bce_plus_dice_on_laplacian_targets():
    head = _roi_head()
    feats, proposals, samples = _inputs()
    results = _sampling_results(head, feats, proposals, samples)
    n = sum(len(r.pos_priors) for r in results)
    torch.manual_seed(2)
    mask_preds = torch.randn(n, NUM_CLASSES, 28, 28)
    boundary_preds = torch.randn(n, NUM_CLASSES, 28, 28)
    gts = [s.gt_instances for s in samples]
    out = head.mask_head.loss_and_target(mask_preds, boundary_preds, results, gts, head.train_cfg)
    targets = laplacian_boundary_targets(out['mask_targets'])
    assert targets.sum() > 0 and (targets < 1).any()
    labels = torch.cat([r.pos_gt_labels for r in results])
    preds = boundary_preds[torch.arange(n), labels]
    bce = F.binary_cross_entropy_with_logits(preds, targets)
    p, t = preds.sigmoid().flatten(1), targets.flatten(1)
    dice = (1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)).mean()
    torch.testing.assert_close(out['loss_mask']['loss_boundary_bce'], bce)
    torch.testing.assert_close(out['loss_mask']['loss_boundary_dice'], dice)
    # The mask loss is mmdet's (of shape (1, ), as mmdet's).
    mask_bce = F.binary_cross_entropy_with_logits(mask_preds[torch.arange(n), labels],
                                                  out['mask_targets'])
    torch.testing.assert_close(out['loss_mask']['loss_mask'].reshape(()), mask_bce)


def test_no_positive_roi_gives_zero_boundary_losses():
    head = _roi_head()
    feats, proposals, samples = _inputs(num_items=(0, 0))
    losses = head.loss(feats, proposals, samples)
    assert losses['loss_boundary_bce'] == 0 and losses['loss_boundary_dice'] == 0


def test_predict_with_detections_and_with_none():
    head = _roi_head().eval()
    feats, proposals, samples = _inputs()
    head.test_cfg.score_thr = 0.0
    with torch.no_grad():
        results = head.predict(feats, copy.deepcopy(proposals), samples, rescale=True)
    for res, sample in zip(results, samples):
        assert len(res) > 0 and res.masks.shape == (len(res), *sample.ori_shape)
    empty = [InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0),
                          labels=torch.zeros(0, dtype=torch.long)) for _ in proposals]
    with torch.no_grad():
        results = head.predict(feats, empty, samples, rescale=False)
    assert all(len(r) == 0 and r.masks.shape[0] == 0 for r in results)


def test_a_shared_mask_extractor_is_rejected():
    with pytest.raises(ValueError, match='mask_roi_extractor of its own'):
        _roi_head(mask_roi_extractor=None)
