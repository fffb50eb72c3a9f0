"""The demo configs: fair pairs, and trainable with 2 CPU processes."""
import glob
import os.path as osp
import socket
import sys

import pytest
from mmengine.config import Config

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_DIR = osp.join(REPO_ROOT, 'configs', 'ifr', 'demo')
PAIRS = ['shapes', 'fruits-nuts']


def _demo(pair: str, side: str) -> Config:
    return Config.fromfile(osp.join(DEMO_DIR, f'mask-rcnn_mbv2_fpn_{pair}_{side}.py'))


@pytest.mark.parametrize('pair', PAIRS)
def test_pair_differs_only_in_the_mask_head_and_ifr_runtime(pair):
    base, ifr = _demo(pair, 'baseline').to_dict(), _demo(pair, 'ifr').to_dict()
    base_head = base['model']['roi_head'].pop('mask_head')
    ifr_head = ifr['model']['roi_head'].pop('mask_head')
    assert base_head.pop('type') == 'FCNMaskHead'
    assert ifr_head.pop('type') == 'IFRConvFCMaskHead'
    assert base_head == ifr_head
    assert ifr.pop('custom_imports')['imports'] == ['mmifr']
    assert [h['type'] for h in ifr.pop('custom_hooks')] == [
        'IFRSolverStatsHook', 'IFRUnrollWarmupHook'
    ]
    base.pop('custom_hooks', None)
    assert base == ifr


def test_every_demo_config_is_covered():
    names = {osp.basename(p) for p in glob.glob(osp.join(DEMO_DIR, '*.py'))}
    assert names == {f'mask-rcnn_mbv2_fpn_{p}_{s}.py' for p in PAIRS
                     for s in ('baseline', 'ifr')}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_dist_train_sh_trains_the_ifr_demo_with_two_cpu_processes(tmp_path, tool_runner):
    data = tmp_path / 'shapes'
    tool_runner([
        sys.executable, 'tools/dataset_converters/make_shapes_dataset.py', '--out',
        str(data), '--num-train', '4', '--num-val', '2', '--size', '128'
    ], cwd=str(tmp_path))
    work_dir = tmp_path / 'work_dir'
    options = [
        f'train_dataloader.dataset.data_root={data}/', 'train_cfg.max_iters=3',
        'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=3',
        'default_hooks.logger.interval=1', 'model.backbone.init_cfg=None'
    ]
    tool_runner([
        'bash', 'tools/dist_train.sh',
        osp.join(DEMO_DIR, 'mask-rcnn_mbv2_fpn_shapes_ifr.py'), '2', '--work-dir',
        str(work_dir), '--cfg-options', *options
    ], cwd=str(tmp_path), timeout=600, env=dict(PORT=str(_free_port())))

    assert (work_dir / 'iter_3.pth').exists()
    (log, ) = glob.glob(str(work_dir / '*' / '*.log'))
    text = open(log).read()
    assert 'Distributed training: True' in text
    # Rank 0's log shows the IFR solver statistics of all 3 iterations, the
    # first two unrolled (warm-up) and the last one solved.
    assert text.count('ifr/fwd_nstep') == 3
    assert 'ifr/unroll_warmup: 0.0000' in text
