"""Benchmark IFR against the stock head and write the paper-style table.

Each *row* pairs a baseline config with its IFR config (optionally with
checkpoints). For every row the tool can train both models first
(``tools/train.py``, or ``tools/dist_train.sh`` with ``--gpus N``), evaluates
them (``tools/test.py`` / ``tools/dist_test.sh``), and measures in this
process the parameters of the replaced head, the inference time per image and
the solver steps taken. It prints a markdown table with the IFR - baseline
delta and the paper's published numbers beside it, and writes it (markdown +
JSON) under ``--work-dir``.

Rows come from a YAML file (``--rows``)::

    rows:
      - name: mask_rcnn_mbv2_shapes
        metric: segm                       # segm, bbox or youtube_vis
        paper: mask_rcnn_r50_ifr_1x         # optional, a metafile.yml model
        baseline: {config: configs/ifr/demo/...baseline.py, checkpoint: null}
        ifr: {config: configs/ifr/demo/...ifr.py, checkpoint: null}
        # optional per side: label (the seed study's name for the model,
        # default stock / IFR)

or from ``configs/ifr/metafile.yml`` (``--models mask_rcnn_r50_ifr_1x ...``),
whose entries name the mmdet baseline config of each IFR config.

Examples::

    # the demo: train and compare on the built-in data
    python tools/benchmark_model_zoo.py --rows configs/ifr/demo/rows_shapes.yml --train
    # seed study: every row over 3 seeds, mean +- std (seed_study.md/.json)
    python tools/benchmark_model_zoo.py --rows configs/ifr/demo/rows_shapes.yml --seeds 0 1 2
    # the same runs scored on a second test set as well (seed_study_heldout.md/.json)
    python tools/benchmark_model_zoo.py --rows configs/ifr/demo/rows_shapes.yml --seeds 0 1 2 \
        --test-name heldout --test-cfg-options \
        test_dataloader.dataset.data_root=data/shapes_heldout/ \
        test_evaluator.ann_file=data/shapes_heldout/annotations/instances_val.json
    # COCO on 8 GPUs, two rows of the paper's Table 2
    python tools/benchmark_model_zoo.py --models mask_rcnn_r50_ifr_1x htc_r50_ifr_1x \
        --train --gpus 8 --work-dir work_dirs/model_zoo
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
from functools import partial
from typing import Callable, Dict, List, Optional, Tuple

import torch
import yaml
from mmengine.config import Config, DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from tools.lib.models import resolve_config  # noqa: E402
from tools.lib.seed_study import seed_study_markdown  # noqa: E402
from tools.lib.trained_run import check_trained_from  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
METAFILE = osp.join(ROOT, 'configs', 'ifr', 'metafile.yml')
AP_KEYS = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl')
COCO_SUFFIX = {'AP': 'mAP', 'AP50': 'mAP_50', 'AP75': 'mAP_75', 'APs': 'mAP_s', 'APm': 'mAP_m',
               'APl': 'mAP_l'}
#: YouTubeVISMetric's names (with ``metric_items`` listing them, as the video
#: configs do) of the columns of a ``youtube_vis`` row.
VIS_SUFFIX = {'AP': 'mAP', 'AP50': 'mAP_50', 'AP75': 'mAP_75', 'AR1': 'AR@1', 'AR10': 'AR@10'}
METRICS = ('segm', 'bbox', 'youtube_vis')
SIDES = ('baseline', 'ifr')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument('--rows', help='YAML file listing the rows')
    src.add_argument('--models', nargs='+', help='names of configs/ifr/metafile.yml models')
    parser.add_argument('--work-dir', default='work_dirs/model_zoo', help='outputs go here')
    parser.add_argument('--train', action='store_true', help='train both models of each row first')
    parser.add_argument(
        '--seeds', type=int, nargs='+',
        help='seed study: train (runs already in --work-dir are reused, unless their config '
        'has changed since: then it stops and says so) and evaluate each '
        'model of each row once per seed, write seed_study.md/.json with per-seed and '
        'mean +- std mask and box AP; no timing')
    parser.add_argument(
        '--test-name',
        help='seed study: evaluate every run (training any that is missing) on another test '
        'set, given by --test-cfg-options, as <seed dir>/test_<NAME>/ and '
        'seed_study_<NAME>.md/.json, beside the config\'s own test set')
    parser.add_argument('--test-cfg-options', nargs='+', default=[],
                        help='key=value overrides for the evaluation of --test-name only '
                        '(e.g. test_dataloader.dataset.data_root and test_evaluator.ann_file)')
    parser.add_argument('--gpus', type=int, default=1,
                        help='processes for training/testing; >1 uses dist_train.sh/dist_test.sh')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='device of the in-process timing')
    parser.add_argument('--num-timing-images', type=int, default=20,
                        help='val images timed for inference speed (after one warm-up image)')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='key=value overrides applied to every config (e.g. data roots), '
                        'passed on verbatim to tools/train.py and tools/test.py')
    args = parser.parse_args()
    if bool(args.test_name) != bool(args.test_cfg_options):
        parser.error('--test-name and --test-cfg-options go together (a named test set is '
                     'defined by its overrides)')
    if args.test_name and not re.fullmatch(r'[A-Za-z0-9_-]+', args.test_name):
        parser.error(f'--test-name {args.test_name!r}: letters, digits, _ and - only (it '
                     'names files and folders)')
    if args.test_name and not args.seeds:
        parser.error('--test-name is an option of the seed study (--seeds)')
    # Kept verbatim for the subprocesses, parsed for the in-process model.
    args.cfg_dict = parse_cfg_options(args.cfg_options)
    return args


def parse_cfg_options(options: List[str]) -> dict:
    """``key=value`` overrides as ``--cfg-options`` parses them."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction, default={})
    return parser.parse_args(['--o', *options]).o if options else {}


# ----------------------------------------------------------------------------- rows


def load_metafile() -> Dict[str, dict]:
    with open(METAFILE) as f:
        return {m['Name']: m for m in yaml.safe_load(f)['Models']}


def load_rows(args) -> List[dict]:
    if args.rows:
        with open(args.rows) as f:
            rows = yaml.safe_load(f)['rows']
    else:
        meta = load_metafile()
        unknown = [m for m in args.models if m not in meta]
        if unknown:
            raise ValueError(f'--models: unknown {unknown}; known: {sorted(meta)}')
        rows = [
            dict(
                name=name,
                metric=meta[name]['Paper Results']['Metric'],
                paper=name,
                baseline=dict(config=meta[name]['Baseline Config']),
                ifr=dict(config=meta[name]['Config'])) for name in args.models
        ]
    for row in rows:
        for key in ('name', 'baseline', 'ifr'):
            if key not in row:
                raise ValueError(f'row {row!r} lacks the key {key!r}')
        if row.setdefault('metric', 'segm') not in METRICS:
            raise ValueError(f"row {row['name']}: metric={row['metric']!r}; allowed: "
                             f"{', '.join(METRICS)}")
    return rows


# ------------------------------------------------------------------- train and test


def cfg_options_args(options: List[str]) -> List[str]:
    return ['--cfg-options', *options] if options else []


def launch(script: str, positional: List[str], options: List[str], gpus: int) -> None:
    """Run ``tools/<script>.py`` (or ``dist_<script>.sh``, which takes the
    process count after the positional arguments) from the repo root."""
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
    launch('train', [config],
           ['--work-dir', work_dir] + cfg_options_args(NO_VAL_DURING_TRAINING + options), gpus)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def evaluate(config: str, checkpoint: str, work_dir: str, options: List[str], gpus: int) -> dict:
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


def coco_aps(metrics: dict, metric: str) -> Dict[str, float]:
    """CocoMetric's (or, for ``youtube_vis``, YouTubeVISMetric's) fractions
    as percent APs; a size range without any object (-1) is left out rather
    than shown as -100."""
    if metric == 'youtube_vis':
        aps = {k: metrics.get(f'youtube_vis/segm_{s}') for k, s in VIS_SUFFIX.items()}
    else:
        aps = {k: metrics.get(f'coco/{metric}_{s}') for k, s in COCO_SUFFIX.items()}
    return {k: round(100 * v, 1) for k, v in aps.items() if v is not None and v >= 0}


def columns(results: List[dict]) -> List[str]:
    """The table's metric columns: COCO's for image rows, then AR1 / AR10
    for video rows."""
    video = [r.get('metric', 'segm') == 'youtube_vis' for r in results]
    keys = list(AP_KEYS) if not all(video) else []
    if any(video):
        keys += [k for k in VIS_SUFFIX if k not in keys]
    return keys


# ------------------------------------------------------------ in-process measurements


def replaced_head(model: torch.nn.Module) -> torch.nn.Module:
    """The head IFR replaces: the mask head of two-stage / one-stage instance
    segmenters, else the box head of detectors."""
    model = getattr(model, 'detector', model)
    roi_head = getattr(model, 'roi_head', None)
    for head in (getattr(roi_head, 'mask_head', None), getattr(model, 'mask_head', None)):
        if head is not None:
            return head
    return model.bbox_head


Runs = Tuple[List[Callable[[], object]], int]


def _image_runs(model, dataset, num_images: int) -> Runs:
    """One inference call per image (the first is the warm-up), 1 image each."""
    from mmdet.apis import inference_detector
    n = min(num_images + 1, len(dataset))
    paths = [dataset.get_data_info(i)['img_path'] for i in range(n)]
    return [partial(inference_detector, model, path) for path in paths], 1


def _clip_runs(model, dataset, num_images: int) -> Runs:
    """Calls of ``test_step`` on the first clip (the first is the warm-up),
    as many as make ``num_images`` frames, and the frames of a call; each
    call resets the tracker at frame 0, as the test loop does."""
    from mmengine.dataset import pseudo_collate
    if not len(dataset):
        return [], 0
    data = pseudo_collate([dataset[0]])
    frames = len(data['data_samples'][0])
    return [partial(model.test_step, data)] * (1 + max(1, round(num_images / frames))), frames


def measure(config: str, checkpoint: Optional[str], options: dict, device: str,
            num_images: int) -> dict:
    """Head parameters, inference time per image (per frame for video
    models) and solver steps."""
    from mmengine.registry import init_default_scope

    from mmdet.apis import init_detector, init_track_model
    from mmdet.registry import DATASETS

    from mmifr.engine.hooks import find_refiners

    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    # Video models (MaskTrack R-CNN, SipMaskVIS) wrap a detector and run on clips.
    video = 'detector' in cfg.model
    # init_detector sets mmdet's scope itself, init_track_model does not.
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = (init_track_model if video else init_detector)(cfg, checkpoint, device=device)
    head_params = sum(p.numel() for p in replaced_head(model).parameters())
    # The training seed of the config (one run of each model is one seed).
    out = dict(head_params=head_params, seed=cfg.get('randomness', {}).get('seed'))
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    runs, frames = (_clip_runs if video else _image_runs)(model, dataset, num_images)
    if len(runs) < 2:
        return out
    refiners = find_refiners(model).values()
    runs[0]()  # warm-up: allocator, lazy inits
    for refiner in refiners:
        refiner.pop_stats()
    started = time.perf_counter()
    for run in runs[1:]:
        run()
    if device.startswith('cuda'):
        torch.cuda.synchronize()
    out['infer_ms'] = 1000 * (time.perf_counter() - started) / ((len(runs) - 1) * frames)
    steps = torch.cat([s.forward.nstep for r in refiners for s in r.pop_stats()] or
                      [torch.zeros(0)])
    if steps.numel():
        # Mean over solved samples (RoIs or images), not over calls.
        out['solver_steps'] = steps.float().mean().item()
    return out


# -------------------------------------------------------------------------- report


def fmt(value, digits=1) -> str:
    if value is None:
        return '-'
    return f'{value:.{digits}f}' if isinstance(value, float) else str(value)


def paper_cells(paper: Optional[dict]) -> str:
    if not paper:
        return '-'
    base, ifr = paper['Baseline'].get('AP'), paper['IFR'].get('AP')
    return f'{base} -> {ifr} ({ifr - base:+.1f})'


def markdown(results: List[dict], title: str) -> str:
    keys = columns(results)
    header = ('| row | head | ' + ' | '.join(keys) +
              ' | head params (M) | infer (ms/img) | solver steps | paper AP (Table) |')
    lines = [f'### {title}', '', header, '|' + ' --- |' * (len(keys) + 6)]
    for res in results:
        paper = res.get('paper')
        table = f" (T{paper['Table']})" if paper else ''
        for side in SIDES + ('delta', ):
            r = res[side]
            cells = [fmt(r['ap'].get(k)) for k in keys]
            if side == 'delta':
                cells = [f'{v:+.1f}' if v is not None else '-' for v in
                         (r['ap'].get(k) for k in keys)]
            params = r.get('head_params')
            lines.append('| ' + ' | '.join([
                res['name'] if side == 'baseline' else '',
                {'baseline': 'stock', 'ifr': 'IFR', 'delta': 'IFR - stock'}[side], *cells,
                fmt(params / 1e6, 2) if params else '-',
                fmt(r.get('infer_ms'), 0),
                fmt(r.get('solver_steps'), 1),
                paper_cells(paper) + table if side == 'delta' else ''
            ]) + ' |')
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------------- seed study


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


def seed_run(row: dict, side: str, seed: int, args) -> dict:
    """Train (unless done before) and evaluate one model with one seed, on
    the config's test set or on ``args.test_name``'s."""
    work_dir = osp.join(args.work_dir, row['name'], side, f'seed{seed}')
    suffix = f'_{args.test_name}' if args.test_name else ''
    record = osp.join(work_dir, f'seed_run{suffix}.json')
    # A named test set's metrics live one level down, out of the way of
    # last_test_metrics() on the config's own test set.
    test_dir = osp.join(work_dir, f'test{suffix}') if suffix else work_dir
    config = resolve_config(row[side]['config'])
    options = args.cfg_options + [f'randomness.seed={seed}']
    check_trained_from(config, work_dir, parse_cfg_options(options))
    if osp.exists(record):
        with open(record) as f:
            run = json.load(f)
        # A work dir shared by two rows (the same stock runs) keeps one record.
        if (run['row'], run['config'], run['seed']) == (row['name'], row[side]['config'], seed):
            return run
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.exists(last):
        with open(last) as f:
            checkpoint = f.read().strip()
    else:
        checkpoint = train(config, work_dir, options, args.gpus)
    metrics = last_test_metrics(test_dir, checkpoint) or evaluate(
        config, checkpoint, test_dir, options + args.test_cfg_options, args.gpus)
    run = dict(
        row=row['name'], head=side, label=row[side].get('label'), config=row[side]['config'],
        seed=seed, test_set=args.test_name,
        iterations=trained_iterations(checkpoint),
        # A video row's mask AP is the YouTube-VIS AP (it has no box AP).
        segm_AP=coco_aps(metrics, 'youtube_vis' if row['metric'] == 'youtube_vis' else 'segm'
                         ).get('AP'),
        bbox_AP=coco_aps(metrics, 'bbox').get('AP'),
        checkpoint=osp.relpath(checkpoint, ROOT) if checkpoint.startswith(ROOT) else checkpoint,
        metrics=metrics)
    with open(record, 'w') as f:
        json.dump(run, f, indent=2)
    return run


def seed_study(rows: List[dict], args) -> None:
    runs = []
    out = osp.join(args.work_dir, 'seed_study' + (f'_{args.test_name}' if args.test_name else ''))
    title = f'Seed study (seeds {args.seeds}' + (
        f', test set {args.test_name})' if args.test_name else ')')
    for row in rows:
        for side in SIDES:
            for seed in args.seeds:
                print(f"[seed study] {row['name']} / {side} / seed {seed}", flush=True)
                runs.append(seed_run(row, side, seed, args))
                # Written after every run: a long study can stop anywhere.
                table = seed_study_markdown(runs, title)
                with open(out + '.md', 'w') as f:
                    f.write(table)
                with open(out + '.json', 'w') as f:
                    json.dump(dict(runs=runs), f, indent=2)
    print(table, flush=True)
    print(f'[seed study] wrote {out}.md and {out}.json', flush=True)


def main():
    args = parse_args()
    rows = load_rows(args)
    meta = load_metafile()
    os.makedirs(args.work_dir, exist_ok=True)
    if args.seeds:
        seed_study(rows, args)
        return
    results = []
    for row in rows:
        print(f"[benchmark] row {row['name']}", flush=True)
        res = dict(name=row['name'], metric=row['metric'])
        if row.get('paper'):
            res['paper'] = meta[row['paper']]['Paper Results']
        for side in SIDES:
            spec = row[side]
            config = resolve_config(spec['config'])
            work_dir = osp.join(args.work_dir, row['name'], side)
            checkpoint = spec.get('checkpoint')
            if args.train:
                checkpoint = train(config, work_dir, args.cfg_options, args.gpus)
            if not checkpoint:
                raise ValueError(f"row {row['name']}: no checkpoint for {side}; give one in "
                                 'the row or pass --train')
            metrics = evaluate(config, checkpoint, work_dir, args.cfg_options, args.gpus)
            res[side] = dict(
                config=spec['config'],
                checkpoint=checkpoint,
                ap=coco_aps(metrics, row['metric']),
                metrics=metrics,
                **measure(config, checkpoint, args.cfg_dict, args.device,
                          args.num_timing_images))
        res['delta'] = dict(ap={
            k: round(res['ifr']['ap'][k] - res['baseline']['ap'][k], 1)
            for k in columns([res]) if k in res['ifr']['ap'] and k in res['baseline']['ap']
        })
        results.append(res)
    title = f"IFR vs stock head ({', '.join(sorted({r['metric'] for r in results}))} AP)"
    seeds = {r[side].get('seed') for r in results for side in SIDES}
    if len(seeds) == 1 and None not in seeds:
        title += f', one run each, seed {seeds.pop()}'
    table = markdown(results, title)
    print(table, flush=True)
    with open(osp.join(args.work_dir, 'model_zoo.md'), 'w') as f:
        f.write(table)
    with open(osp.join(args.work_dir, 'model_zoo.json'), 'w') as f:
        json.dump(results, f, indent=2)
    print(f'[benchmark] wrote {args.work_dir}/model_zoo.md and model_zoo.json', flush=True)


if __name__ == '__main__':
    main()
