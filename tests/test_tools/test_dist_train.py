"""End-to-end: ``tools/dist_train.sh`` / ``tools/dist_test.sh`` with 2 processes.

On a machine without CUDA this exercises the CPU path of the tools
(``mmifr.utils.setup_cpu_distributed``): gloo backend, DDP with
``device_ids=None`` and a process group created before the Runner.
"""
import glob
import json
import os.path as osp
import pickle
import socket

import pytest
import torch

pytestmark = pytest.mark.slow

NPROC = 2
MAX_ITERS = 2


def _free_port():
    """A currently free TCP port, so parallel runs do not fight over 29500."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_dist_train_and_test(tmp_path, tiny_coco_factory, tiny_config_writer, probe_module,
                             tool_runner):
    dataset = tiny_coco_factory(str(tmp_path / 'data'))
    probe_dir = tmp_path / 'probes'
    probe_dir.mkdir()
    config = tiny_config_writer(
        str(tmp_path / 'tiny_mask_rcnn.py'),
        dataset,
        max_iters=MAX_ITERS,
        ckpt_interval=MAX_ITERS,
        extra=(f"custom_imports = dict(imports=['mmifr', {probe_module!r}], "
               'allow_failed_imports=False)\n'
               f"custom_hooks = [dict(type='DistProbeHook', out_dir={str(probe_dir)!r})]\n"))
    work_dir = str(tmp_path / 'work_dir')

    tool_runner(['bash', 'tools/dist_train.sh', config,
                 str(NPROC), '--work-dir', work_dir],
                cwd=str(tmp_path),
                timeout=600,
                env=dict(PORT=str(_free_port())))

    # Every rank trained, in one process group of NPROC, with DDP-synchronised
    # (identical) weights at the end.
    probes = [json.load(open(p)) for p in sorted(glob.glob(str(probe_dir / '*.json')))]
    assert [p['rank'] for p in probes] == list(range(NPROC))
    for probe in probes:
        assert probe['world_size'] == NPROC
        assert probe['iter'] == MAX_ITERS
        assert probe['wrapped']
        if not torch.cuda.is_available():
            assert probe['backend'] == 'gloo'
    assert probes[0]['fingerprint'] == pytest.approx(probes[1]['fingerprint'], rel=1e-6)

    ckpt_path = osp.join(work_dir, f'iter_{MAX_ITERS}.pth')
    import mmifr  # noqa: F401  (weights_only-safe globals for torch.load)
    ckpt = torch.load(ckpt_path, map_location='cpu')
    assert ckpt['meta']['iter'] == MAX_ITERS
    # Saved from the unwrapped model (no DDP ``module.`` prefix).
    assert not any(k.startswith('module.') for k in ckpt['state_dict'])
    logs = glob.glob(osp.join(work_dir, '*', '*.log'))
    assert len(logs) == 1
    log = open(logs[0]).read()
    assert 'Distributed training: True' in log
    assert f'GPU number: {NPROC}' in log

    # Distributed testing of that checkpoint: results of both ranks collected.
    out = str(tmp_path / 'results.pkl')
    tool_runner([
        'bash', 'tools/dist_test.sh', config, ckpt_path,
        str(NPROC), '--work-dir',
        str(tmp_path / 'test_dir'), '--out', out
    ],
                cwd=str(tmp_path),
                timeout=600,
                env=dict(PORT=str(_free_port())))
    with open(out, 'rb') as f:
        results = pickle.load(f)
    num_images = len(json.load(open(dataset['ann_path']))['images'])
    assert sorted(r['img_id'] for r in results) == list(range(1, num_images + 1))
