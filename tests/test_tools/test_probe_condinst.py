"""Tests of ``tools/analysis_tools/probe_condinst.py``: the statistics of a
CondInst's mask branch and the split of the gradient on the shared features,
on the demo configs with random weights and a hand-made batch."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from tool_runs import REPO_ROOT, load_tool
from tools.lib.models import NO_PRETRAINED_BACKBONE, build_detector

CONFIG = osp.join(REPO_ROOT, 'configs', 'ifr', 'demo', 'condinst_mbv2_fpn_shapes_{}.py')


probe = load_tool('tools/analysis_tools/probe_condinst.py')


def _batch(size=128):
    """Two images with two filled squares each, as PackDetInputs packs them."""
    inputs, samples = [], []
    for i in range(2):
        image = torch.full((3, size, size), 60, dtype=torch.uint8)
        masks = np.zeros((2, size, size), dtype=np.uint8)
        boxes = [(10 + 8 * i, 12, 60, 70), (70, 50 + 4 * i, 118, 110)]
        for k, (x1, y1, x2, y2) in enumerate(boxes):
            image[:, y1:y2, x1:x2] = 200 - 60 * k
            masks[k, y1:y2, x1:x2] = 1
        sample = DetDataSample(metainfo=dict(
            img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size),
            batch_input_shape=(size, size), scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor(boxes, dtype=torch.float32), labels=torch.tensor([0, 1]),
            masks=BitmapMasks(masks, size, size))
        inputs.append(image)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _model(side):
    torch.manual_seed(0)
    model, _ = build_detector(CONFIG.format(side), NO_PRETRAINED_BACKBONE)
    return model.train()


@pytest.mark.parametrize('side', ['baseline', 'ifr'])
def test_probe_reports_the_branch_statistics_and_both_gradients(side):
    result = probe.probe_batch(_model(side), _batch())
    if side == 'ifr':
        # The block ends in GroupNorm: unit rms, signed.
        assert result['tower_rms'] == pytest.approx(1.0, abs=0.02)
        assert 0.1 < result['tower_positive'] < 0.9
    else:
        # The stock tower ends in a ReLU: nothing negative.
        assert result['tower_mean'] > 0 and result['tower_positive'] <= 1
    for path in ('reg_convs', 'fpn_mask_levels'):
        mask, det = result[f'grad_mask_{path}'], result[f'grad_det_{path}']
        assert mask > 0 and det > 0
        assert result[f'grad_ratio_{path}'] == pytest.approx(mask / det)
    assert result['controller_rms'] > 0 and result['loss_mask'] > 0


def test_probe_gradient_split_follows_the_paths():
    """With the controller reading a detached regression tower, the mask loss
    no longer reaches that tower: the probe's split must show it."""
    model = _model('ifr')
    model.bbox_head.controller.register_forward_pre_hook(
        lambda m, inputs: tuple(t.detach() for t in inputs))
    result = probe.probe_batch(model, _batch())
    assert result['grad_mask_reg_convs'] == 0
    assert result['grad_det_reg_convs'] > 0 and result['grad_mask_fpn_mask_levels'] > 0
