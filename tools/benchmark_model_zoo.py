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

A seed study's row may name one side only (a control: another stock variant
trained and scored beside a pair, e.g. the stock head with GroupNorm).

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
import json
import os
import os.path as osp
import re
import sys
from typing import Dict, List, Optional

import torch
import yaml

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from tools.lib.benchmark.model_inference import measure  # noqa: E402
from tools.lib.models import resolve_config  # noqa: E402
from tools.lib.outputs import write_json, write_results  # noqa: E402
from tools.lib.seed_study import seed_study_markdown  # noqa: E402
from tools.lib.trained_run import (AP_KEYS, ROOT, VIS_SUFFIX, check_trained_from,  # noqa: E402
                                   coco_aps, evaluate, last_test_metrics, parse_cfg_options,
                                   train, trained_iterations)

METAFILE = osp.join(ROOT, 'configs', 'ifr', 'metafile.yml')
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
        if 'name' not in row:
            raise ValueError(f'row {row!r} lacks the key \'name\'')
        # A comparison needs both models; a seed study trains the sides named.
        sides = [side for side in SIDES if side in row]
        if not sides or (len(sides) < len(SIDES) and not args.seeds):
            raise ValueError(f"row {row['name']!r} names {sides or 'no model'}; it needs "
                             f"{' and '.join(SIDES)}" + (' (a seed study takes either alone)'
                                                         if not args.seeds else ''))
        if row.setdefault('metric', 'segm') not in METRICS:
            raise ValueError(f"row {row['name']}: metric={row['metric']!r}; allowed: "
                             f"{', '.join(METRICS)}")
    return rows


# -------------------------------------------------------------------------- report


def columns(results: List[dict]) -> List[str]:
    """The table's metric columns: COCO's for image rows, then AR1 / AR10
    for video rows."""
    video = [r.get('metric', 'segm') == 'youtube_vis' for r in results]
    keys = list(AP_KEYS) if not all(video) else []
    if any(video):
        keys += [k for k in VIS_SUFFIX if k not in keys]
    return keys


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
    write_json(record, run)
    return run


def seed_study(rows: List[dict], args) -> None:
    runs = []
    out = osp.join(args.work_dir, 'seed_study' + (f'_{args.test_name}' if args.test_name else ''))
    title = f'Seed study (seeds {args.seeds}' + (
        f', test set {args.test_name})' if args.test_name else ')')
    for row in rows:
        for side in (s for s in SIDES if s in row):
            for seed in args.seeds:
                print(f"[seed study] {row['name']} / {side} / seed {seed}", flush=True)
                runs.append(seed_run(row, side, seed, args))
                # Written after every run: a long study can stop anywhere.
                table = seed_study_markdown(runs, title)
                write_results(out, dict(runs=runs), table)
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
    write_results(osp.join(args.work_dir, 'model_zoo'), results, table)
    print(f'[benchmark] wrote {args.work_dir}/model_zoo.md and model_zoo.json', flush=True)


if __name__ == '__main__':
    main()
