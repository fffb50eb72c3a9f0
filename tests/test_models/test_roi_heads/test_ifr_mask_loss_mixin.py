"""Tests of :class:`mmifr.models.roi_heads.IFRMaskLossMixin`: fixed-point
correction in the FCN-style IFR mask heads, through mmdet's RoI heads."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import mmdet
from mmdet.registry import MODELS
from roi_head_inputs import roi_head_inputs
from mmdet.utils import register_all_modules
from mmifr.models.layers.ifr_refiner import fp_correction_weights
from mmifr.models.roi_heads.mask_heads.ifr_conv_fc_mask_head import BUDGET_IFR_CFG

C, NUM_CLASSES, IMG = 16, 4, 64
REPO_ROOT = osp.join(osp.dirname(__file__), *[osp.pardir] * 3)
#: (RoI head config, IFR mask head type, loss terms of one iterate)
HEADS = {
    'mask_rcnn': (osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'mask_rcnn',
                           'mask-rcnn_r50_fpn_1x_coco.py'), 'IFRConvFCMaskHead',
                  ('loss_mask', )),
    'bmask_rcnn': (osp.join(REPO_ROOT, 'configs', 'ifr', 'bmask_rcnn_r50_1x.py'),
                   'IFRBoundaryPreservingMaskHead',
                   ('loss_mask', 'loss_boundary_bce', 'loss_boundary_dice')),
}


@pytest.fixture(scope='module', autouse=True)
def _registries():
    register_all_modules()


def _roi_head(name, **ifr_cfg):
    config, head_type, _ = HEADS[name]
    model = Config.fromfile(config).model
    cfg = model.roi_head
    cfg.update(train_cfg=model.train_cfg.rcnn, test_cfg=model.test_cfg.rcnn)
    for key in ('bbox_roi_extractor', 'mask_roi_extractor', 'boundary_roi_extractor'):
        if key in cfg:
            cfg[key].out_channels = C
    cfg.bbox_head.update(in_channels=C, fc_out_channels=32, num_classes=NUM_CLASSES)
    cfg.mask_head.update(type=head_type, in_channels=C, conv_out_channels=C,
                         num_classes=NUM_CLASSES, ifr_cfg=ifr_cfg)
    if name == 'bmask_rcnn':
        cfg.mask_head.boundary_in_channels = C
    torch.manual_seed(0)
    head = MODELS.build(cfg)
    head.init_weights()
    # Away from the near-zero predictor init, so that the iterates differ
    # in their loss.
    torch.nn.init.normal_(head.mask_head.conv_logits.weight, std=0.3)
    return head


def _inputs():
    return roi_head_inputs(C, NUM_CLASSES, IMG)


def _losses(head):
    feats, proposals, samples = _inputs()
    torch.manual_seed(2)
    return head.loss(feats, proposals, samples)


@pytest.mark.parametrize('name', sorted(HEADS))
def test_every_iterate_gets_the_heads_own_loss(name):
    """With budget 2: the loss of h_2 weighted w_2, and as <name>_fpc the
    loss that a budget-1 head with the same weights (whose output is h_1)
    gets, weighted w_1; w = normalised powers of gamma."""
    terms = HEADS[name][2]
    fpc = _roi_head(name, budget=2, fp_correction=dict(gamma=0.5))
    plain = _roi_head(name, budget=2, fp_correction=None)
    first = _roi_head(name, budget=1, fp_correction=None)
    plain.load_state_dict(fpc.state_dict())
    first.load_state_dict(fpc.state_dict())
    losses, plain_losses, first_losses = _losses(fpc), _losses(plain), _losses(first)
    w1, w2 = fp_correction_weights(0.5, 2)
    for term in terms:
        torch.testing.assert_close(losses[term], w2 * plain_losses[term])
        torch.testing.assert_close(losses[term + '_fpc'], w1 * first_losses[term])
    # Not trivially equal: the two iterates predict differently.
    assert any(not torch.allclose(first_losses[t], plain_losses[t]) for t in terms)
    assert not any(k.endswith('_fpc') for k in plain_losses)
    # The correction term trains the block (and the predictors) as well.
    losses[terms[0] + '_fpc'].sum().backward()
    block_weight = fpc.mask_head.convs[0].block.conv1.parametrizations.weight.original1
    assert block_weight.grad is not None and block_weight.grad.abs().sum() > 0


def test_the_budget_recipe_trains_with_fpc_and_infers_with_its_budget():
    head = _roi_head('mask_rcnn', **BUDGET_IFR_CFG)
    refiner = head.mask_head.convs[0]
    assert (refiner.budget, refiner.fp_correction, refiner.with_cp) == (2, dict(gamma=0.8), True)
    losses = _losses(head)
    assert {'loss_mask', 'loss_mask_fpc'} <= set(losses)
    # Inference runs the same two evaluations, and keeps no iterates.
    head.eval()
    with torch.no_grad():
        head.mask_head(torch.randn(3, C, 14, 14))
    assert refiner.deq.last_stats.forward.nfev == 2 and refiner.pop_states() == []


def test_no_positive_roi_gives_finite_zero_correction_losses():
    head = _roi_head('mask_rcnn', **BUDGET_IFR_CFG)
    feats, proposals, samples = _inputs()
    for sample in samples:
        sample.gt_instances = sample.gt_instances[:0]
    losses = head.loss(feats, proposals, samples)
    assert losses['loss_mask_fpc'] == 0 and torch.isfinite(losses['loss_mask'])


def test_htc_head_supervises_logits_and_drops_feature_only_passes():
    head = MODELS.build(dict(type='IFRHTCMaskHead', num_classes=NUM_CLASSES, in_channels=C,
                             conv_out_channels=C, with_conv_res=True, ifr_cfg=BUDGET_IFR_CFG))
    head.init_weights()
    head.train()
    x, res = torch.randn(3, C, 14, 14), torch.randn(3, C, 14, 14)
    # HTC's later stages read an earlier stage's feature: nothing supervised.
    head(x, res, return_logits=False)
    assert head._fpc_refiner().pop_states() == [] and not getattr(head, '_iterate_preds', [])
    logits = head(x, res, return_feat=False)
    (preds, ) = head._iterate_preds
    assert preds['mask_preds'].shape == logits.shape == (3, NUM_CLASSES, 28, 28)


def test_with_cp_recomputes_the_earlier_iterates_predictions_with_the_same_losses():
    """``with_cp`` also checkpoints the predictions of the supervised earlier
    iterates; the losses and every gradient stay those of the plain head."""
    results = []
    for with_cp in (False, True):
        head = _roi_head('mask_rcnn', **dict(BUDGET_IFR_CFG, with_cp=with_cp))
        calls = []
        # A pre-hook: the recompute stops inside conv_logits (its input is the
        # last tensor it needs), before a forward hook would run.
        head.mask_head.conv_logits.register_forward_pre_hook(lambda *args: calls.append(1))
        losses = _losses(head)
        forward_calls = len(calls)
        (losses['loss_mask'] + losses['loss_mask_fpc']).backward()
        grads = [p.grad.clone() for p in head.mask_head.parameters() if p.grad is not None]
        results.append((losses, grads, forward_calls, len(calls) - forward_calls))
    (plain, plain_grads, plain_fwd, plain_bwd), (cp, cp_grads, cp_fwd, cp_bwd) = results
    for key in ('loss_mask', 'loss_mask_fpc'):
        torch.testing.assert_close(cp[key], plain[key])
    assert len(cp_grads) == len(plain_grads) > 0
    for a, b in zip(cp_grads, plain_grads):
        torch.testing.assert_close(a, b)
    # h_2's prediction runs once; h_1's again in backward, with the tower
    # bypassed as in forward (the block is not run a third time for it).
    assert plain_fwd == cp_fwd == 2 and plain_bwd == 0 and cp_bwd == 1


def test_backward_frees_the_final_prediction_before_recomputing_an_earlier_one():
    """With ``with_cp``, the final prediction's backward runs before the
    earlier iterate's prediction is recomputed: the two 28x28 activations are
    never held together, which keeps the head's training memory at the stock
    head's (docs/ifr_at_stock_cost.md)."""
    head = _roi_head('mask_rcnn', **BUDGET_IFR_CFG)
    events, phase = [], ['forward']

    def record(module, inputs):
        # The predictor's input (after the in-place ReLU) gets its gradient
        # when this prediction's backward is done.
        events.append((phase[0], 'forward'))
        inputs[0].register_hook(lambda grad: events.append((phase[0], 'backward')))

    head.mask_head.conv_logits.register_forward_pre_hook(record)
    losses = _losses(head)
    phase[0] = 'backward'
    (losses['loss_mask'] + losses['loss_mask_fpc']).backward()
    assert [e for p, e in events if p == 'backward'] == ['backward', 'forward', 'backward']
