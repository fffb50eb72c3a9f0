"""Tests of ``tools/analysis_tools/probe_dense_towers.py``: the scale of what
a dense head's towers hand their predictors, on the RetinaNet demo configs
with initial weights and a tiny dataset."""
import json
import os.path as osp

import pytest

from tool_runs import REPO_ROOT, load_tool

CONFIG = osp.join(REPO_ROOT, 'configs', 'ifr', 'demo', 'retinanet_mbv2_fpn_shapes_{}.py')

probe = load_tool('tools/analysis_tools/probe_dense_towers.py')


def _run(tiny_coco, side, tmp_path):
    out = tmp_path / f'{side}.json'
    options = [
        'model.backbone.init_cfg=None',
        f"test_dataloader.dataset.data_root={tiny_coco['data_root']}",
        f"test_dataloader.dataset.ann_file={tiny_coco['ann_file']}",
        f"test_dataloader.dataset.data_prefix.img={tiny_coco['img_prefix']}"
    ]
    result = probe.main([CONFIG.format(side), '--num-images', '2', '--out', str(out),
                         '--cfg-options', *options])
    assert json.loads(out.read_text()) == result
    return result


def test_mmdets_tower_init_starts_far_below_kaiming_and_the_ifr_block(tiny_coco, tmp_path):
    mmdet_init = _run(tiny_coco, 'baseline-mmdet-init', tmp_path)
    kaiming, ifr = _run(tiny_coco, 'baseline', tmp_path), _run(tiny_coco, 'ifr', tmp_path)
    assert mmdet_init['head'] == kaiming['head'] == 'SmallInitRetinaHead'
    assert ifr['head'] == 'IFRRetinaHead'
    for tower in ('cls_convs', 'reg_convs'):
        # N(0, 0.01) shrinks the signal ~0.24x per 128-channel conv, 4 convs.
        assert mmdet_init['tower_output_rms'][tower] < 0.02
        assert kaiming['tower_output_rms'][tower] > 10 * mmdet_init['tower_output_rms'][tower]
        # The IFR block ends in GroupNorm: about unit scale whatever its input
        # (less on the 1x1 top levels of these 64-pixel images).
        assert 0.5 < ifr['tower_output_rms'][tower] <= 1.0 + 1e-3
    assert mmdet_init['conv_weight_std']['cls_convs.0.conv'] == pytest.approx(0.01, rel=0.1)
    assert kaiming['conv_weight_std']['cls_convs.0.conv'] == pytest.approx(
        (2 / 1152)**0.5, rel=0.1)


def test_a_head_without_towers_is_named():
    import torch
    with pytest.raises(ValueError, match='Linear has no cls_convs or reg_convs'):
        probe.tower_outputs(torch.nn.Linear(1, 1))
