"""The cost / accuracy frontier of IFR recipes: which inference budget to pick.

Reads the trained runs of a seed study (``tools/benchmark_model_zoo.py
--seeds``; ``<work-dir>/<row>/<side>/seed<k>/``): each row's IFR side is a
recipe, its stock side the reference. For every recipe and seed, the IFR
model runs with each budget ``K`` (``--budgets``, plain block evaluations
from ``H0 = 0``), its own inference and the full Broyden solve, beside its
stock twin on the same images, interleaved (one thread). Writes
``<out>.json``, ``<out>.md`` and ``<out>.png`` (the picture: x = whole-model
inference time / stock, y = mask AP - stock, mean +- std over seeds).

Example::

    python tools/analysis_tools/ifr_frontier.py \\
        --rows configs/ifr/demo/rows_shapes.yml configs/ifr/demo/rows_shapes_deq.yml \\
        --seeds 0 1 2 --work-dir work_dirs/seed_study --out docs/results/ifr_frontier

Seeds evaluated by separate processes (one per core) are joined with
``--merge A.json B.json --out <stem>``.
"""
import argparse
import json
import os.path as osp
import sys

import torch
import yaml

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from tools.lib.benchmark.frontier import (checkpoint_of, evaluate_recipe,  # noqa: E402
                                          frontier_markdown, frontier_point, merge_points,
                                          plot_frontier)
from tools.lib.models import resolve_config  # noqa: E402
from tools.lib.outputs import write_results  # noqa: E402
from tools.lib.progress import log, quiet_mmengine  # noqa: E402
from tools.lib.seed_study import mean_std  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rows', nargs='+',
                        help='rows files of the seed study (configs/ifr/demo/rows_*.yml)')
    parser.add_argument('--seeds', type=int, nargs='+')
    parser.add_argument('--work-dir', help='the seed study\'s work dir')
    parser.add_argument('--merge', nargs='+', metavar='JSON',
                        help='instead of evaluating: join these reports of this tool (other seeds)')
    parser.add_argument('--budgets', type=int, nargs='+', default=[1, 2, 3, 4])
    parser.add_argument('--out', default='work_dirs/benchmarks/ifr_frontier',
                        help='output stem (.json, .md, .png)')
    parser.add_argument('--num-images', type=int, default=None,
                        help='evaluate on the first N test images only')
    parser.add_argument('--threads', type=int, default=1, help='intra-op threads')
    args = parser.parse_args(argv)
    missing = [f'--{k.replace("_", "-")}' for k in ('rows', 'seeds', 'work_dir')
               if getattr(args, k) is None]
    if args.merge and len(missing) < 3:
        parser.error('--merge joins reports; it takes no --rows, --seeds or --work-dir')
    if not args.merge and missing:
        parser.error(f'{", ".join(missing)} required (or --merge)')
    bad = [k for k in args.budgets if k < 1]
    if bad:
        parser.error(f'--budgets must be positive, got {bad}')
    return args


def load_recipes(args):
    recipes = []
    for path in args.rows:
        with open(path) as f:
            rows = yaml.safe_load(f)['rows']
        for row in rows:
            recipes.append(dict(name=row['ifr'].get('label') or row['name'], row=row['name'],
                                config=resolve_config(row['ifr']['config']),
                                stock_config=resolve_config(row['baseline']['config'])))
    return recipes


def evaluate(args) -> list:
    """The points of every recipe of ``args.rows`` over ``args.seeds``."""
    quiet_mmengine()
    torch.set_num_threads(args.threads)
    recipes = load_recipes(args)
    runs = {}
    done, total = 0, len(recipes) * len(args.seeds)
    for recipe in recipes:
        for seed in args.seeds:
            run_dir = osp.join(args.work_dir, recipe['row'], '{}', f'seed{seed}')
            spec = dict(recipe, checkpoint=checkpoint_of(run_dir.format('ifr')),
                        stock_checkpoint=checkpoint_of(run_dir.format('baseline')))
            log(f"[frontier] {done + 1}/{total}: {recipe['name']}, seed {seed}")
            for run in evaluate_recipe(spec, seed, args.budgets, args.num_images):
                runs.setdefault((recipe['name'], run['setting']), []).append(run)
            done += 1
    return [frontier_point(name, setting, rs) for (name, setting), rs in runs.items()]


def main(argv=None):
    args = parse_args(argv)
    if args.merge:
        reports = []
        for path in args.merge:
            with open(path) as f:
                reports.append(json.load(f))
        points = merge_points(reports)
    else:
        points = evaluate(args)
    # A recipe's stock model of a seed is in each of its settings: count it once.
    stock_aps = {(p['recipe'], r['seed']): r['stock_segm_AP'] for p in points for r in p['runs']}
    stock = mean_std(list(stock_aps.values()))
    title = (f'IFR cost / accuracy frontier (seeds {sorted({s for _, s in stock_aps})}; '
             f"stock mask AP {stock['mean']:.1f})")
    table = frontier_markdown(points, title)
    write_results(args.out, dict(title=title, argv=sys.argv[1:] if argv is None else list(argv),
                                 points=points), table)
    plot_frontier(points, args.out + '.png', title)
    print(table)
    log(f'[frontier] wrote {args.out}.json, .md and .png')


if __name__ == '__main__':
    main()
