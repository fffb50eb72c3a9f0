"""End-to-end: ``tools/train.py`` trains, checkpoints and resumes; ``tools/test.py``
evaluates the result.

One module-scoped run trains the tiny Mask R-CNN for 4 iterations with a
checkpoint every 2; the tests then resume from it in subprocesses exactly as a
user would. With PyTorch >= 2.6 the resume only works because ``import mmifr``
allow-lists the globals of mmengine checkpoints (``mmifr.utils.checkpoint``).
"""
import glob
import json
import os.path as osp
import pickle
import shutil
import sys

import pytest
import torch

import mmifr  # noqa: F401  (allow-lists checkpoint globals for torch.load below)

pytestmark = pytest.mark.slow

MAX_ITERS = 4
CKPT_INTERVAL = 2


def _log_text(work_dir):
    """Text of the (only) run log in ``work_dir``."""
    logs = glob.glob(osp.join(work_dir, '*', '*.log'))
    assert len(logs) == 1, logs
    with open(logs[0]) as f:
        return f.read()


@pytest.fixture(scope='module')
def first_run(tmp_path_factory, tiny_coco_factory, tiny_config_writer, probe_module, tool_runner):
    """Train 4 iterations from scratch; return the paths the tests need."""
    root = tmp_path_factory.mktemp('train_resume')
    dataset = tiny_coco_factory(str(root / 'data'))
    # The resume probe rides along in every run of this config; it only
    # writes a file named by --cfg-options.
    config = tiny_config_writer(
        str(root / 'tiny_mask_rcnn.py'),
        dataset,
        max_iters=MAX_ITERS,
        ckpt_interval=CKPT_INTERVAL,
        extra=(f"custom_imports = dict(imports=['mmifr', {probe_module!r}], "
               'allow_failed_imports=False)\n'
               "custom_hooks = [dict(type='ResumeProbeHook', out_file=None)]\n"))
    work_dir = str(root / 'run1')
    tool_runner([
        sys.executable, 'tools/train.py', config, '--work-dir', work_dir, '--cfg-options',
        f'custom_hooks.0.out_file={root / "probe_run1.pth"}'
    ],
                cwd=str(root))
    return dict(root=root, config=config, work_dir=work_dir, dataset=dataset)


def test_first_run_checkpoints(first_run):
    work_dir = first_run['work_dir']
    for it in range(CKPT_INTERVAL, MAX_ITERS + 1, CKPT_INTERVAL):
        assert osp.isfile(osp.join(work_dir, f'iter_{it}.pth'))
    # Weights-only loading of a full training checkpoint (message hub with
    # HistoryBuffers, numpy scalars...) works once mmifr is imported.
    ckpt = torch.load(osp.join(work_dir, f'iter_{MAX_ITERS}.pth'), map_location='cpu')
    assert ckpt['meta']['iter'] == MAX_ITERS
    assert len(ckpt['message_hub']['log_scalars']['train/loss'].data[0]) == MAX_ITERS
    probe = torch.load(str(first_run['root'] / 'probe_run1.pth'))
    assert probe['iter'] == 0


def test_resume_from_checkpoint(first_run, tool_runner):
    """``--resume PATH`` restarts at iter 2 with the saved weights and optimizer."""
    root = first_run['root']
    ckpt_path = osp.join(first_run['work_dir'], f'iter_{CKPT_INTERVAL}.pth')
    probe_file = str(root / 'probe_resume.pth')
    work_dir = str(root / 'run2')
    tool_runner([
        sys.executable, 'tools/train.py', first_run['config'], '--work-dir', work_dir, '--resume',
        ckpt_path, '--cfg-options', f'custom_hooks.0.out_file={probe_file}'
    ],
                cwd=str(root))

    saved = torch.load(ckpt_path, map_location='cpu')
    probe = torch.load(probe_file, map_location='cpu')

    # The loop continues from the checkpoint's counter...
    assert saved['meta']['iter'] == CKPT_INTERVAL
    assert probe['iter'] == CKPT_INTERVAL
    # ...with exactly the saved weights...
    assert probe['state_dict'].keys() == saved['state_dict'].keys()
    for name, value in saved['state_dict'].items():
        assert torch.equal(probe['state_dict'][name], value), name
    # ...optimizer state (SGD momentum buffers after 2 steps, lr)...
    opt_saved, opt_probe = saved['optimizer'], probe['optimizer']
    assert len(opt_saved['state']) > 0
    assert opt_probe['state'].keys() == opt_saved['state'].keys()
    for idx, state in opt_saved['state'].items():
        assert torch.equal(opt_probe['state'][idx]['momentum_buffer'], state['momentum_buffer'])
    assert [g['lr'] for g in opt_probe['param_groups']] == \
        [g['lr'] for g in opt_saved['param_groups']]
    # ...and LR scheduler state.
    assert probe['param_schedulers'] == saved['param_schedulers']

    # It then trains only the remaining iterations.
    log = _log_text(work_dir)
    assert f'resumed epoch: 0, iter: {CKPT_INTERVAL}' in log
    assert f'Iter(train) [{MAX_ITERS}/{MAX_ITERS}]' in log
    assert f'Iter(train) [1/{MAX_ITERS}]' not in log
    final = torch.load(osp.join(work_dir, f'iter_{MAX_ITERS}.pth'), map_location='cpu')
    assert final['meta']['iter'] == MAX_ITERS
    assert not osp.exists(osp.join(work_dir, f'iter_{CKPT_INTERVAL}.pth'))


def test_auto_resume_latest(first_run, tool_runner):
    """Bare ``--resume`` picks the work dir's latest checkpoint."""
    root = first_run['root']
    work_dir = str(root / 'run_auto')
    # A copy: the other tests read run1 and must not see new files there.
    shutil.copytree(first_run['work_dir'], work_dir)
    # ``last_checkpoint`` holds an absolute path: point it into the copy.
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work_dir, f'iter_{MAX_ITERS}.pth'))
    new_max = MAX_ITERS + 1
    tool_runner([
        sys.executable, 'tools/train.py', first_run['config'], '--work-dir', work_dir, '--resume',
        '--cfg-options', f'train_cfg.max_iters={new_max}',
        f'custom_hooks.0.out_file={root / "probe_auto.pth"}'
    ],
                cwd=str(root))
    probe = torch.load(str(root / 'probe_auto.pth'), map_location='cpu')
    assert probe['iter'] == MAX_ITERS
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip().endswith(f'iter_{new_max}.pth')


def test_test_tool_evaluates_checkpoint(first_run, tool_runner):
    """``tools/test.py`` loads the checkpoint, evaluates COCO metrics, dumps results."""
    root = first_run['root']
    work_dir = str(root / 'test_run')
    out = str(root / 'results.pkl')
    show_dir = 'vis'
    tool_runner([
        sys.executable, 'tools/test.py', first_run['config'],
        osp.join(first_run['work_dir'], f'iter_{MAX_ITERS}.pth'), '--work-dir', work_dir, '--out',
        out, '--show-dir', show_dir, '--cfg-options', 'custom_hooks=[]'
    ],
                cwd=str(root))

    with open(out, 'rb') as f:
        results = pickle.load(f)
    num_images = len(json.load(open(first_run['dataset']['ann_path']))['images'])
    assert len(results) == num_images
    for res in results:
        assert {'img_id', 'pred_instances'} <= set(res)
        assert {'bboxes', 'scores', 'labels', 'masks'} <= set(res['pred_instances'])
    metrics = glob.glob(osp.join(work_dir, '*', '*.json'))
    assert len(metrics) == 1
    with open(metrics[0]) as f:
        scalars = json.load(f)
    assert 'coco/bbox_mAP' in scalars and 'coco/segm_mAP' in scalars
    assert len(glob.glob(osp.join(work_dir, '*', show_dir, '*.png'))) == num_images
