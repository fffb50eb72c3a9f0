"""``tools/dist_train.sh`` trains the IFR demo config with 2 CPU processes."""
import glob
import os.path as osp
import socket
import sys

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_IFR = osp.join(REPO_ROOT, 'configs', 'ifr', 'demo', 'mask-rcnn_mbv2_fpn_shapes_ifr.py')

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_dist_train_sh_trains_the_ifr_demo_with_two_cpu_processes(tmp_path, tool_runner):
    data = tmp_path / 'shapes'
    tool_runner([
        sys.executable, 'tools/dataset_converters/make_shapes_dataset.py', '--out',
        str(data), '--num-train', '4', '--num-val', '2', '--size', '128'
    ], cwd=str(tmp_path))
    work_dir = tmp_path / 'work_dir'
    # The evaluator reads its annotations when the runner is built, even
    # though this run never validates.
    options = [f'{loader}.dataset.data_root={data}/'
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    options += [f'{ev}.ann_file={data}/annotations/instances_val.json'
                for ev in ('val_evaluator', 'test_evaluator')]
    options += [
        'train_cfg.max_iters=3',
        'train_cfg.val_begin=100', 'default_hooks.checkpoint.interval=3',
        'default_hooks.logger.interval=1', 'model.backbone.init_cfg=None'
    ]
    tool_runner([
        'bash', 'tools/dist_train.sh',
        DEMO_IFR, '2', '--work-dir',
        str(work_dir), '--cfg-options', *options
    ], cwd=str(tmp_path), timeout=600, env=dict(PORT=str(_free_port())))

    assert (work_dir / 'iter_3.pth').exists()
    (log, ) = glob.glob(str(work_dir / '*' / '*.log'))
    text = open(log).read()
    assert 'Distributed training: True' in text
    # Rank 0's log shows the IFR solver statistics of all 3 iterations, the
    # first two unrolled (warm-up) and the last one solved.
    assert text.count('ifr/fwd_nstep: ') == 3
    assert 'ifr/unroll_warmup: 0.0000' in text


DEMO_VIDEO_IFR = osp.join(REPO_ROOT, 'configs', 'ifr', 'demo',
                          'masktrack-rcnn_mbv2_fpn_shapes-video_ifr.py')


def test_dist_train_sh_trains_the_video_demo_with_two_cpu_processes(tmp_path, tool_runner):
    data = tmp_path / 'shapes_video'
    tool_runner([
        sys.executable, 'tools/dataset_converters/make_shapes_video_dataset.py', '--out',
        str(data), '--num-train', '4', '--num-val', '1', '--frames', '4', '--size', '96'
    ], cwd=str(tmp_path))
    work_dir = tmp_path / 'work_dir'
    options = [f'{loader}.dataset.data_root={data}/'
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    options += [
        'train_cfg.max_iters=3', 'train_cfg.val_begin=100',
        'default_hooks.checkpoint.interval=3', 'default_hooks.logger.interval=1',
        'model.detector.backbone.init_cfg=None'
    ]
    tool_runner([
        'bash', 'tools/dist_train.sh', DEMO_VIDEO_IFR, '2', '--work-dir',
        str(work_dir), '--cfg-options', *options
    ], cwd=str(tmp_path), timeout=600, env=dict(PORT=str(_free_port())))

    assert (work_dir / 'iter_3.pth').exists()
    (log, ) = glob.glob(str(work_dir / '*' / '*.log'))
    text = open(log).read()
    assert 'Distributed training: True' in text
    # The track head trained beside the IFR mask head.
    assert text.count('loss_match: ') == 3 and text.count('ifr/fwd_nstep: ') == 3
