"""Apply a written decision rule to a seed study: does a candidate recipe replace the default?

Reads the ``seed_study*.json`` files of ``tools/benchmark_model_zoo.py --seeds`` (one per test
set, e.g. the config's val set and ``--test-name heldout``), names three models by ``ROW:HEAD``
(the stock model, the reference recipe, i.e. today's default, and the candidate), and applies the
rule: the candidate is adopted if, on every test set, its metric minus the reference's, paired by
seed and averaged, is at least ``-margin``, over at least ``--min-seeds`` seeds; otherwise the
reference stays; with fewer seeds the verdict is ``undecided``. Writes ``<out>.json`` and
``<out>.md`` with every seed, the means +- std and the paired differences (candidate - reference,
each recipe - stock).

Example (docs/ifr_default_at_2x.md)::

    W=work_dirs/seed_study_2x_decision
    python tools/analysis_tools/decide_recipe.py \\
        --study val=$W/seed_study.json heldout=$W/seed_study_heldout.json \\
        --stock mask_rcnn_mbv2_shapes_2x:baseline --reference mask_rcnn_mbv2_shapes_2x:ifr \\
        --candidate mask_rcnn_mbv2_shapes_2x_budget_only:ifr --margin 0.3 --min-seeds 4 \\
        --out docs/results/ifr_default_at_2x
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from tools.lib.outputs import write_results  # noqa: E402
from tools.lib.seed_study import METRICS, mean_std, paired_difference  # noqa: E402

MODELS = ('stock', 'reference', 'candidate')
DIFFERENCES = (('candidate', 'reference'), ('candidate', 'stock'), ('reference', 'stock'))


def _model(text):
    row, sep, head = text.rpartition(':')
    if not sep or not row or head not in ('baseline', 'ifr'):
        raise argparse.ArgumentTypeError(f'{text!r}: expected ROW:HEAD with HEAD baseline or ifr')
    return row, head


def _study(text):
    name, sep, path = text.partition('=')
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f'{text!r}: expected NAME=PATH')
    return name, path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--study', type=_study, nargs='+', required=True,
                        help='NAME=PATH of a seed_study*.json, one per test set')
    for name in MODELS:
        parser.add_argument(f'--{name}', type=_model, required=True, help='ROW:HEAD')
    parser.add_argument('--metric', default='segm_AP', choices=METRICS,
                        help='the metric the rule reads')
    parser.add_argument('--margin', type=float, default=0.3,
                        help='the candidate may trail the reference by this much (AP points)')
    parser.add_argument('--min-seeds', type=int, default=4)
    parser.add_argument('--out', required=True, help='output stem (.json, .md)')
    args = parser.parse_args(argv)
    if args.margin < 0 or args.min_seeds < 1:
        parser.error(f'--margin must be >= 0 and --min-seeds >= 1, got {args.margin} and '
                     f'{args.min_seeds}')
    return args


def summarise_test_set(runs, models):
    """Per seed and mean +- std of each model, and the paired differences."""
    by_model = {name: {r['seed']: r for r in runs if (r['row'], r['head']) == key}
                for name, key in models.items()}
    missing = [':'.join(models[n]) for n, v in by_model.items() if not v]
    if missing:
        raise ValueError(f'the study has no run of {missing}')
    seeds = sorted(set.intersection(*(set(v) for v in by_model.values())))
    return dict(
        seeds=seeds,
        per_seed={s: {n: {m: by_model[n][s][m] for m in METRICS} for n in MODELS} for s in seeds},
        models={n: {m: mean_std([by_model[n][s][m] for s in seeds if by_model[n][s][m] is not None])
                    for m in METRICS} for n in MODELS},
        differences={f'{a} - {b}': {m: paired_difference(
            [r for r in runs if r['seed'] in seeds], models[a], models[b], m) for m in METRICS}
            for a, b in DIFFERENCES})


def verdict(summaries, metric, margin, min_seeds):
    """``('adopt' | 'keep' | 'undecided', why)`` by the rule of the module docstring."""
    seeds = min(len(s['seeds']) for s in summaries.values())
    if seeds < min_seeds:
        return 'undecided', f'{seeds} paired seed(s), the rule needs {min_seeds}'
    short = {name: s['differences']['candidate - reference'][metric]['mean']
             for name, s in summaries.items()}
    behind = {name: d for name, d in short.items() if d < -margin}
    text = ', '.join(f'{name} {d:+.2f}' for name, d in short.items())
    if behind:
        return 'keep', f'candidate - reference {text}: below -{margin} on {", ".join(behind)}'
    return 'adopt', f'candidate - reference {text}: within -{margin} or better on every test set'


def _pm(stat, signed=False):
    if stat['mean'] is None:
        return '-'
    return f"{stat['mean']:{'+' if signed else ''}.1f} +- {stat['std']:.1f}"


def to_markdown(result):
    rule = result['rule']
    lines = [f"# {rule['candidate']} against {rule['reference']} (stock: {rule['stock']})", '',
             f"Rule: adopt if mean({rule['metric']} candidate - reference, paired by seed) >= "
             f"-{rule['margin']} on every test set, over >= {rule['min_seeds']} seeds.", '',
             f"**Verdict: {result['verdict']}** ({result['why']}).", '']
    for name, summary in result['test_sets'].items():
        lines += [f'## {name}', '', '| seed | ' + ' | '.join(
            f'{n} mask / box' for n in MODELS) + ' |', '| --- |' + ' --- |' * len(MODELS)]
        for seed, models in summary['per_seed'].items():
            lines.append(f'| {seed} | ' + ' | '.join(
                ' / '.join('-' if models[n][m] is None else f'{models[n][m]:.1f}' for m in METRICS)
                for n in MODELS) + ' |')
        lines.append('| mean +- std | ' + ' | '.join(' / '.join(
            _pm(summary['models'][n][m]) for m in METRICS) for n in MODELS) + ' |')
        lines += ['', '| paired difference | mask AP | box AP | per seed (mask) |',
                  '| --- | --- | --- | --- |']
        for key, diff in summary['differences'].items():
            per_seed = ', '.join(f'{d:+.1f}' for d in diff['segm_AP']['per_seed'].values())
            lines.append(f"| {key} | {_pm(diff['segm_AP'], True)} | {_pm(diff['bbox_AP'], True)} "
                         f'| {per_seed} |')
        lines.append('')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    models = {n: getattr(args, n) for n in MODELS}
    summaries = {}
    for name, path in args.study:
        with open(path) as f:
            summaries[name] = summarise_test_set(json.load(f)['runs'], models)
    decision, why = verdict(summaries, args.metric, args.margin, args.min_seeds)
    result = dict(
        rule=dict(metric=args.metric, margin=args.margin, min_seeds=args.min_seeds,
                  **{n: ':'.join(k) for n, k in models.items()}),
        verdict=decision, why=why, studies=dict(args.study), test_sets=summaries)
    markdown = to_markdown(result)
    write_results(args.out, result, markdown)
    print(markdown)
    return 0


if __name__ == '__main__':
    sys.exit(main())
