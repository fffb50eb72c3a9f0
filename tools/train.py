# Copyright (c) mmifr contributors. All rights reserved.
"""Train a detector with MMEngine's Runner (MMDetection 3.x style).

Examples::

    # single process (GPU if available, otherwise CPU)
    python tools/train.py configs/ifr/CONFIG.py
    # resume from the latest checkpoint in the work dir / from a given one
    python tools/train.py CONFIG --resume
    python tools/train.py CONFIG --resume work_dirs/CONFIG/iter_2000.pth
    # several processes on one machine (NCCL on GPUs, gloo on CPUs)
    bash tools/dist_train.sh CONFIG 8
"""
import argparse
import os
import os.path as osp
import sys

import torch
from mmdet.utils import register_all_modules, setup_cache_size_limit_of_dynamo
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

# ``tools/`` scripts run from a checkout; make the in-tree package importable
# even when it is not pip-installed (dist_train.sh sets PYTHONPATH as well).
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import mmifr  # noqa: E402,F401  (registers mmifr modules, safe checkpoint globals)
from mmifr.utils import setup_cpu_distributed, teardown_distributed  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training (fp16 on GPU, bf16 on CPU)')
    parser.add_argument(
        '--auto-scale-lr', action='store_true', help='enable automatically scaling LR.')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='If a checkpoint path is given, resume from it; with no value, '
        'resume from the latest checkpoint in the work directory.')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch (and torchrun with --use-env off) passes
    # `--local-rank` since PyTorch 2.0 and `--local_rank` before; accept both.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()

    # Detection losses and post-processing have dynamic shapes; a small dynamo
    # cache avoids endless recompilation when torch.compile is enabled.
    setup_cache_size_limit_of_dynamo()
    # Populate mmdet's registries up front. The default scope itself is left
    # to the config (``default_scope = 'mmdet'`` in mmdet's runtime), so that
    # configs of other scopes are not silently forced into mmdet's.
    register_all_modules(init_default_scope=False)

    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    # mmifr's modules live in mmdet's registries: a config that does not
    # inherit mmdet's default_runtime still has to build from that scope.
    cfg.setdefault('default_scope', 'mmdet')

    # work_dir is determined in this priority: CLI > segment in file > filename
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        # mmengine's AmpOptimWrapper asserts a GPU; without CUDA use mmifr's
        # wrapper, which runs bf16 autocast on CPU (no loss scaling needed).
        cfg.optim_wrapper.type = ('AmpOptimWrapper'
                                  if torch.cuda.is_available() else 'DeviceAmpOptimWrapper')
        cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        if 'auto_scale_lr' in cfg and \
                'enable' in cfg.auto_scale_lr and \
                'base_batch_size' in cfg.auto_scale_lr:
            cfg.auto_scale_lr.enable = True
        else:
            raise RuntimeError('Can not find "auto_scale_lr" or '
                               '"auto_scale_lr.enable" or '
                               '"auto_scale_lr.base_batch_size" in your '
                               'configuration file.')

    # resume is determined in this priority: resume from > auto_resume
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    # A multi-process launch without CUDA: switch to gloo and CPU DDP, and set
    # up the process group before the Runner tries (mmengine assumes CUDA).
    setup_cpu_distributed(cfg)

    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)

    runner.train()
    # Not in a ``finally``: after a failure a collective may still be pending
    # on another rank, and the exit code already tells the launcher.
    teardown_distributed()


if __name__ == '__main__':
    main()
