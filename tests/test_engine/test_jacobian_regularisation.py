"""Jacobian regularisation (``ifr_cfg.jac_reg``) in a real mmdet training run."""
import glob
import json
import math
import os.path as osp
import sys

import pytest


def _scalars(work_dir):
    (path, ) = glob.glob(osp.join(work_dir, '2*', 'vis_data', 'scalars.json'))
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.mark.slow
def test_mask_rcnn_trains_with_the_penalty_in_its_losses(
        tmp_path, tiny_coco_factory, ifr_config_writer, tool_runner):
    """Iteration 1 unrolled, 2-3 DEQ: the penalty is an mmdet loss in both
    phases (``loss_ifr_jac`` = weight x the logged estimate, in the total)."""
    weight = 0.5
    dataset = tiny_coco_factory(str(tmp_path / 'data'))
    config = ifr_config_writer(
        str(tmp_path / 'jac.py'),
        dataset,
        max_iters=3,
        ckpt_interval=3,
        switch_iter=1,
        jac_reg=dict(weight=weight),
        hooks=[dict(type='IFRAuxLossHook')])
    work_dir = str(tmp_path / 'work_dir')
    tool_runner([sys.executable, 'tools/train.py', config, '--work-dir', work_dir],
                cwd=str(tmp_path))

    scalars = _scalars(work_dir)
    assert [s['ifr/unroll_warmup'] for s in scalars] == [1.0, 0.0, 0.0]
    for s in scalars:
        assert s['loss_ifr_jac'] > 0 and math.isfinite(s['loss_ifr_jac'])
        assert s['loss_ifr_jac'] == pytest.approx(weight * s['ifr/jac_frobenius'], rel=1e-3)
        parts = sum(v for k, v in s.items() if k.startswith('loss_'))
        assert s['loss'] == pytest.approx(parts, rel=1e-3)
