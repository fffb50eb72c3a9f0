"""A training run of ``tools/train.py`` and the test after it: launching
them, reading what they leave in the work directory, and whether a finished
run may be reused for a config."""
import argparse
import glob
import json
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional

import torch
from mmengine.config import Config, DictAction

#: The folder holding ``tools/`` (the checkout, or ``mmifr/.mim`` in a wheel).
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: Table columns of CocoMetric's image metrics and their key suffixes.
COCO_SUFFIX = {'AP': 'mAP', 'AP50': 'mAP_50', 'AP75': 'mAP_75', 'APs': 'mAP_s', 'APm': 'mAP_m',
               'APl': 'mAP_l'}
AP_KEYS = tuple(COCO_SUFFIX)
#: Table columns of YouTubeVISMetric's metrics (with ``metric_items`` listing them, as the
#: video configs do) and their key suffixes.
VIS_SUFFIX = {'AP': 'mAP', 'AP50': 'mAP_50', 'AP75': 'mAP_75', 'AR1': 'AR@1', 'AR10': 'AR@10'}

#: The sections of a config that decide the trained model.
TRAINED_FROM = ('model', 'train_cfg', 'optim_wrapper', 'param_scheduler', 'train_dataloader',
                'custom_hooks', 'randomness')
#: Keys of ``train_cfg`` that say when a run validates, not what it trains.
VALIDATION_KEYS = ('val_begin', 'val_interval')


def _trained_from(cfg: Config) -> dict:
    cfg = cfg.to_dict()
    sections = {key: cfg.get(key) for key in TRAINED_FROM}
    for key in VALIDATION_KEYS:
        (sections['train_cfg'] or {}).pop(key, None)
    return sections


def check_trained_from(config: str, work_dir: str, cfg_options: dict) -> None:
    """Refuse a run in ``work_dir`` that a different version of ``config``
    trained.

    A study reuses the runs it finds under its work directory, keyed by the
    config's path; a config edited since (another head type, a longer
    schedule) would otherwise be scored by its old checkpoint. The config that
    mmengine dumped in the work directory (by training or by the test after
    it) is compared with ``config`` as it is now, with the same
    ``--cfg-options``, section by section (:data:`TRAINED_FROM`; not when it
    validates). A work directory without a dumped config is not checked.

    Args:
        config (str): path of the config the run should come from.
        work_dir (str): the run's work directory.
        cfg_options (dict): the ``--cfg-options`` it was trained with.

    Raises:
        RuntimeError: naming the work directory and the sections that differ.
    """
    dumped = osp.join(work_dir, osp.basename(config))
    if not osp.exists(dumped):
        return
    trained = _trained_from(Config.fromfile(dumped))
    current = Config.fromfile(config)
    current.merge_from_dict(cfg_options)
    current = _trained_from(current)
    differ = [key for key in TRAINED_FROM if trained[key] != current[key]]
    if differ:
        raise RuntimeError(
            f'{work_dir} holds a run trained from another version of {config} '
            f'({", ".join(differ)} changed since); move it away or choose another --work-dir '
            'to train the config as it is now')


# ------------------------------------------------------------------ launching runs


def parse_cfg_options(options: List[str]) -> dict:
    """``key=value`` overrides as ``--cfg-options`` parses them."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction, default={})
    return parser.parse_args(['--o', *options]).o if options else {}


def cfg_options_args(options: List[str]) -> List[str]:
    return ['--cfg-options', *options] if options else []


def launch(script: str, positional: List[str], options: List[str], gpus: int) -> None:
    """Run ``tools/<script>.py`` (or ``dist_<script>.sh``, which takes the
    process count after the positional arguments) from :data:`ROOT`."""
    if gpus > 1:
        cmd = ['bash', osp.join(ROOT, 'tools', f'dist_{script}.sh'), *positional, str(gpus)]
    else:
        cmd = [sys.executable, osp.join(ROOT, 'tools', f'{script}.py'), *positional]
    cmd += options
    print('[benchmark] $ ' + ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


# Evaluation follows training through tools/test.py; validating at the end of
# training as well would evaluate every model twice.
NO_VAL_DURING_TRAINING = ['train_cfg.val_begin=1000000000']


def train(config: str, work_dir: str, options: List[str], gpus: int) -> str:
    """Train ``config`` into ``work_dir``; returns its last checkpoint."""
    launch('train', [config],
           ['--work-dir', work_dir] + cfg_options_args(NO_VAL_DURING_TRAINING + options), gpus)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def evaluate(config: str, checkpoint: str, work_dir: str, options: List[str], gpus: int) -> dict:
    """Test ``checkpoint`` with ``tools/test.py``; returns its metrics."""
    started = time.time()
    launch('test', [config, checkpoint], ['--work-dir', work_dir] + cfg_options_args(options),
           gpus)
    # mmengine's LoggerHook dumps the test metrics to <work_dir>/<stamp>/<stamp>.json.
    logs = [
        p for p in glob.glob(osp.join(work_dir, '*', '*.json'))
        if osp.getmtime(p) >= started - 1
    ]
    if not logs:
        raise RuntimeError(f'no metrics json found under {work_dir} after testing {config}')
    with open(max(logs, key=osp.getmtime)) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    return lines[-1]


# ---------------------------------------------------------------- what runs left


def trained_iterations(checkpoint: str) -> int:
    meta = torch.load(checkpoint, map_location='cpu', weights_only=False)['meta']
    return int(meta['iter'])


def last_test_metrics(work_dir: str, checkpoint: str) -> Optional[dict]:
    """The metrics of the newest ``tools/test.py`` run in ``work_dir`` made
    after ``checkpoint`` was written, or ``None``: a study interrupted after a
    model was evaluated does not evaluate it again."""
    newest = None
    for path in glob.glob(osp.join(work_dir, '*', '*.json')):
        if osp.getmtime(path) < osp.getmtime(checkpoint):
            continue
        with open(path) as f:
            lines = [line for line in f if line.strip()]
        last = json.loads(lines[-1]) if lines else {}
        if any(k.startswith('coco/') for k in last) and (
                newest is None or osp.getmtime(path) > newest[0]):
            newest = (osp.getmtime(path), last)
    return newest[1] if newest else None


def coco_aps(metrics: dict, metric: str) -> Dict[str, float]:
    """CocoMetric's (or, for ``youtube_vis``, YouTubeVISMetric's) fractions
    as percent APs; a size range without any object (-1) is left out rather
    than shown as -100."""
    if metric == 'youtube_vis':
        aps = {k: metrics.get(f'youtube_vis/segm_{s}') for k, s in VIS_SUFFIX.items()}
    else:
        aps = {k: metrics.get(f'coco/{metric}_{s}') for k, s in COCO_SUFFIX.items()}
    return {k: round(100 * v, 1) for k, v in aps.items() if v is not None and v >= 0}
