"""Awkward data through an IFR model with ``tools/train.py`` and ``tools/test.py``.

* Images without annotations, zero-area masks and batches in which the IFR
  mask head gets no RoIs at all train (unrolled and DEQ) and test normally.
* A missing or corrupt image file stops training with mmcv/mmengine's usual
  error naming the file, not with an error from inside the solver.

The IFR variant of the tiny Mask R-CNN comes from ``tests/helpers/tiny_configs.py``.
"""
import glob
import json
import math
import os
import os.path as osp
import pickle
import sys

import pytest
import torch
from mmengine.config import ConfigDict

from mmifr.models.roi_heads.mask_heads import IFRConvFCMaskHead


def _edit_coco(ann_path, edit):
    with open(ann_path) as f:
        coco = json.load(f)
    edit(coco)
    with open(ann_path, 'w') as f:
        json.dump(coco, f)


def _awkward_annotations(coco):
    """Image 1: no objects. Image 2: plus a zero-area box (mmdet drops it) and
    a degenerate (collinear) polygon whose mask has no pixel at all."""
    coco['annotations'] = [a for a in coco['annotations'] if a['image_id'] != 1]
    next_id = max(a['id'] for a in coco['annotations']) + 1
    coco['annotations'] += [
        dict(
            id=next_id,
            image_id=2,
            category_id=1,
            segmentation=[[10.0, 10.0, 10.0, 10.0, 10.0, 10.0]],
            area=0.0,
            bbox=[10.0, 10.0, 0.0, 0.0],
            iscrowd=0),
        dict(
            id=next_id + 1,
            image_id=2,
            category_id=2,
            segmentation=[[10.0, 20.0, 20.0, 20.0, 30.0, 20.0]],
            area=1.0,
            bbox=[10.0, 20.0, 20.0, 1.0],
            iscrowd=0),
    ]


# --------------------------------------------------------------- quick tests


@pytest.mark.parametrize('mode', ['deq', 'unroll', 'explicit'])
def test_ifr_mask_head_with_zero_rois(mode):
    """No RoIs: empty outputs in eval, and (zero) gradients for every head
    parameter in training (DDP needs all of them every step)."""
    head = IFRConvFCMaskHead(
        num_convs=4,
        in_channels=8,
        conv_out_channels=8,
        num_classes=2,
        ifr_cfg=ConfigDict(
            type='IFRRefiner', mode=mode, solver=dict(max_iter=4, backward_max_iter=4)))
    x = torch.zeros(0, 8, 14, 14, requires_grad=True)
    head.train()
    out = head(x)
    assert out.shape == (0, 2, 28, 28)
    (out.sum() * 0).backward()
    for name, p in head.named_parameters():
        if '.convs.' in f'.{name}':
            assert p.grad is not None, name
            assert not p.grad.any(), name
    head.eval()
    with torch.no_grad():
        assert head(x).shape == (0, 2, 28, 28)


# ---------------------------------------------------------------- slow tests


@pytest.mark.slow
def test_empty_images_zero_area_masks_and_zero_rois(tmp_path, tiny_coco_factory, ifr_config_writer,
                                                    engine_probe_module, tool_runner):
    dataset = tiny_coco_factory(str(tmp_path / 'data'))
    _edit_coco(dataset['ann_path'], _awkward_annotations)
    rois_file = str(tmp_path / 'rois_{rank}.json')
    max_iters = 8
    config = ifr_config_writer(
        str(tmp_path / 'awkward.py'),
        dataset,
        max_iters=max_iters,
        ckpt_interval=max_iters,
        switch_iter=4,  # first pass over the 4 images unrolled, second pass DEQ
        imports=[engine_probe_module],
        hooks=[dict(type='RefinerBatchProbeHook', out_file=rois_file)],
        extra=(
            # One image per batch, in order: image 1 is a batch without any
            # positive RoI, once in each phase.
            'train_dataloader.update(batch_size=1)\n'
            "train_dataloader['sampler'].update(shuffle=False)\n"
            "train_dataloader['dataset'].update(filter_cfg=dict(filter_empty_gt=False))\n"
            # Every detection goes to the mask head at test time.
            "model['test_cfg']['rcnn'].update(score_thr=0.0)\n"))
    work_dir = str(tmp_path / 'work_dir')
    tool_runner([sys.executable, 'tools/train.py', config, '--work-dir', work_dir],
                cwd=str(tmp_path))

    with open(rois_file.format(rank=0)) as f:
        calls = [c['rois'] for c in json.load(f) if c['training']]
    # Empty image 1 at iterations 1 (unrolled) and 5 (DEQ): zero RoIs.
    assert len(calls) == max_iters
    assert calls[0] == calls[4] == 0
    assert all(n > 0 for i, n in enumerate(calls) if i not in (0, 4))
    scalars_file, = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(scalars_file) as f:
        scalars = [json.loads(line) for line in f]
    assert len(scalars) == max_iters
    for s in scalars:
        for key in ('loss', 'loss_mask', 'loss_cls', 'loss_bbox', 'loss_rpn_cls'):
            assert math.isfinite(s[key]), (s['iter'], key, s[key])
    assert scalars[0]['loss_mask'] == scalars[4]['loss_mask'] == 0

    # Testing (DEQ solve, with the empty image among the test images).
    out = str(tmp_path / 'results.pkl')
    test_rois = str(tmp_path / 'test_rois_{rank}.json')
    tool_runner([
        sys.executable, 'tools/test.py', config,
        osp.join(work_dir, f'iter_{max_iters}.pth'), '--work-dir',
        str(tmp_path / 'test_dir'), '--out', out, '--cfg-options',
        f'custom_hooks.2.out_file={test_rois}'
    ],
                cwd=str(tmp_path))
    with open(out, 'rb') as f:
        results = pickle.load(f)
    assert sorted(r['img_id'] for r in results) == [1, 2, 3, 4]
    for r in results:
        pred = r['pred_instances']
        assert len(pred['masks']) == len(pred['scores']) > 0
    with open(test_rois.format(rank=0)) as f:
        calls = json.load(f)
    assert calls and not any(c['training'] for c in calls)
    assert all(c['rois'] > 0 for c in calls)


def _corrupt(dataset, kind):
    path = osp.join(dataset['img_dir'], '000002.png')
    if kind == 'missing':
        os.remove(path)
    else:
        with open(path, 'wb') as f:
            f.write(b'\x89PNG\r\n\x1a\n this is not an image')
    return path


@pytest.mark.slow
@pytest.mark.parametrize('kind, error', [
    ('missing', 'FileNotFoundError'),
    ('corrupt', 'AssertionError: failed to load image'),
])
def test_missing_or_corrupt_image_gives_a_clear_error(tmp_path, tiny_coco_factory,
                                                      ifr_config_writer, tool_runner_unchecked,
                                                      kind, error):
    dataset = tiny_coco_factory(str(tmp_path / 'data'))
    path = _corrupt(dataset, kind)
    config = ifr_config_writer(
        str(tmp_path / 'broken.py'),
        dataset,
        max_iters=4,
        ckpt_interval=4,
        extra=('train_dataloader.update(batch_size=1)\n'
               "train_dataloader['sampler'].update(shuffle=False)\n"))
    proc = tool_runner_unchecked(
        [sys.executable, 'tools/train.py', config, '--work-dir',
         str(tmp_path / 'wd')],
        cwd=str(tmp_path))
    assert proc.returncode != 0
    tail = proc.stdout[-5000:]
    assert error in tail, tail
    assert path in tail, tail
    # The data pipeline fails, not the model (let alone the solver).
    last_traceback = tail.split('Traceback')[-1]
    assert 'mmcv/transforms/loading.py' in last_traceback, tail
    assert 'mmifr/' not in last_traceback, tail
