"""Smoke test: mmdet's own Mask R-CNN config builds, trains a step and predicts
with ``mmifr`` loaded through ``custom_imports`` (the way project configs do).

Full-size R-50 FPN on one 128x160 image, CPU only: about 15 s of CPU time,
mostly imports, the backward pass and the SGD update of 44M parameters.
"""
import sys

import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

CONFIG = """\
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmifr'], allow_failed_imports=False)
model = dict(
    # No ImageNet weights: nothing can be downloaded on the test machines.
    backbone=dict(init_cfg=None),
    # Fewer proposals / sampled RoIs than the COCO defaults: the RoI heads'
    # cost scales with them, and on a shared 2-core CPU every second counts.
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=200, max_per_img=100), rcnn=dict(sampler=dict(num=64))),
    # score_thr=0 so that an untrained model still returns (10) instances and
    # the mask branch and its pasting back to image size are exercised.
    test_cfg=dict(
        rpn=dict(nms_pre=200, max_per_img=100), rcnn=dict(score_thr=0.0, max_per_img=10)))
"""

IMG_SHAPE = (3, 128, 160)


def _build(tmp_path):
    path = tmp_path / 'mask_rcnn_smoke.py'
    path.write_text(CONFIG)
    cfg = Config.fromfile(str(path))  # runs custom_imports
    assert 'mmifr' in sys.modules
    assert cfg.model.backbone.init_cfg is None
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return cfg, model


def _batch(num_items=3):
    return demo_mm_inputs(
        batch_size=1, image_shapes=IMG_SHAPE, num_items=[num_items], num_classes=80, with_mask=True)


def test_mask_rcnn_train_step_and_predict(tmp_path, mmdet_configs_resolvable):
    cfg, model = _build(tmp_path)

    # One optimisation step through the config's own optimiser wrapper.
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    watched = model.roi_head.mask_head.conv_logits.weight
    before = watched.detach().clone()
    log_vars = model.train_step(_batch(), optim_wrapper)
    for key in ('loss', 'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'loss_mask'):
        assert key in log_vars, key
        assert torch.isfinite(log_vars[key]).all(), (key, log_vars[key])
    assert log_vars['loss'] > 0
    # backward() + step() reached the mask head (the last stage of the graph).
    assert not torch.equal(watched.detach(), before)

    # One prediction, rescaled to the original image size.
    model.eval()
    with torch.no_grad():
        results = model.test_step(_batch())
    assert len(results) == 1 and isinstance(results[0], DetDataSample)
    pred = results[0].pred_instances
    num = len(pred)
    assert pred.bboxes.shape == (num, 4)
    assert pred.scores.shape == pred.labels.shape == (num, )
    assert num == 10
    assert pred.masks.shape == (num, *IMG_SHAPE[1:])
    assert torch.isfinite(pred.bboxes).all() and torch.isfinite(pred.scores).all()
