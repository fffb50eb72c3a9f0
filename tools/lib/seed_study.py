"""Statistics of a seed study: many training runs of the same configs.

A run is one trained and evaluated model, a dict with at least ``row``,
``head`` (``'baseline'`` or ``'ifr'``), ``config``, ``seed``, ``iterations``,
``segm_AP`` and ``bbox_AP`` (percent; ``None`` where the metric is absent),
and optionally ``label``, the name its head is shown by (a row that pairs two
stock heads, e.g. 4 convs against 4 weight-shared ones, is not "stock vs IFR").
:func:`aggregate` turns a list of runs into per-(row, head) mean and sample
std, and the difference of means IFR - baseline over the seeds both heads
share; :func:`paired_difference` compares any two models by seed (two IFR
recipes of one stock model); :func:`seed_study_markdown` renders tables.
"""
import math
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

METRICS = ('segm_AP', 'bbox_AP')
HEADS = ('baseline', 'ifr')
HEAD_NAMES = {'baseline': 'stock', 'ifr': 'IFR'}
RUN_KEYS = ('row', 'head', 'config', 'seed', 'iterations') + METRICS


def mean_std(values: Sequence[float]) -> Dict[str, Optional[float]]:
    """Mean and sample standard deviation (``ddof=1``; 0 for one value).

    Returns:
        dict: ``mean``, ``std`` and ``n``; ``mean`` and ``std`` are ``None``
        for an empty input.
    """
    values = [float(v) for v in values]
    n = len(values)
    if not n:
        return dict(mean=None, std=None, n=0)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean)**2 for v in values) / (n - 1)) if n > 1 else 0.0
    return dict(mean=mean, std=std, n=n)


def check_run(run: dict) -> None:
    missing = [k for k in RUN_KEYS if k not in run]
    if missing:
        raise ValueError(f'seed-study run {run!r} lacks the key(s) {missing}')
    if run['head'] not in HEADS:
        raise ValueError(f"seed-study run head={run['head']!r}; allowed: {list(HEADS)}")


def aggregate(runs: List[dict]) -> List[dict]:
    """Per row: mean +- std of each metric per head, and IFR - stock.

    The difference is taken per seed over the seeds that both heads ran
    (paired: a seed fixes the data order, and with ``PairedInitHook`` in the
    configs also the initial weights of the parts both models share), and its
    mean +- std is reported with the number of pairs.

    Returns:
        list[dict]: one entry per row in order of first appearance:
        ``{'row', 'seeds': {head: [...]}, head: {metric: mean_std},
        'delta': {metric: mean_std}}``.
    """
    rows: 'OrderedDict[str, List[dict]]' = OrderedDict()
    for run in runs:
        check_run(run)
        rows.setdefault(run['row'], []).append(run)
    out = []
    for name, row_runs in rows.items():
        by_head = {h: {r['seed']: r for r in row_runs if r['head'] == h} for h in HEADS}
        entry = dict(row=name, seeds={h: sorted(by_head[h]) for h in HEADS})
        for head in HEADS:
            entry[head] = {
                m: mean_std([r[m] for r in by_head[head].values() if r[m] is not None])
                for m in METRICS
            }
        paired = sorted(set(by_head['baseline']) & set(by_head['ifr']))
        entry['delta'] = {
            m: mean_std([
                by_head['ifr'][s][m] - by_head['baseline'][s][m] for s in paired
                if by_head['ifr'][s][m] is not None and by_head['baseline'][s][m] is not None
            ])
            for m in METRICS
        }
        out.append(entry)
    return out


def _labels(runs: List[dict], row: str) -> Dict[str, str]:
    """The name each head of ``row`` is shown by: its runs' ``label``, else
    stock / IFR."""
    labels = dict(HEAD_NAMES)
    for run in runs:
        if run['row'] == row and run.get('label'):
            labels[run['head']] = run['label']
    return labels


def _pm(stat: dict, signed: bool = False) -> str:
    if stat['mean'] is None:
        return '-'
    mean = f"{stat['mean']:+.1f}" if signed else f"{stat['mean']:.1f}"
    return f"{mean} +- {stat['std']:.1f} (n={stat['n']})"


def seed_study_markdown(runs: List[dict], title: str) -> str:
    """Per-seed runs and the aggregate, as two markdown tables."""
    lines = [f'### {title}', '', '| row | head | seed | iterations | mask AP | box AP |',
             '| --- | --- | --- | --- | --- | --- |']
    for run in sorted(runs, key=lambda r: (r['row'], HEADS.index(r['head']), r['seed'])):
        label = _labels(runs, run['row'])[run['head']]
        cells = [run['row'], label, str(run['seed']), str(run['iterations'])]
        cells += ['-' if run[m] is None else f'{run[m]:.1f}' for m in METRICS]
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines += ['', '| row | head | mask AP (mean +- std) | box AP (mean +- std) |',
              '| --- | --- | --- | --- |']
    for entry in aggregate(runs):
        labels = _labels(runs, entry['row'])
        for head in HEADS:
            lines.append(f"| {entry['row'] if head == 'baseline' else ''} | {labels[head]} | "
                         + ' | '.join(_pm(entry[head][m]) for m in METRICS) + ' |')
        lines.append(f"| | {labels['ifr']} - {labels['baseline']} (paired by seed) | " +
                     ' | '.join(_pm(entry['delta'][m], signed=True) for m in METRICS) + ' |')
    return '\n'.join(lines) + '\n'


def paired_difference(runs: List[dict], model: Tuple[str, str], reference: Tuple[str, str],
                      metric: str = 'segm_AP') -> dict:
    """``metric`` of one model minus another's, paired by seed.

    Models are named by ``(row, head)``, so two IFR recipes of different rows
    that share a stock side compare as directly as a row's two heads. Seeds
    that either model lacks, or that lack the metric, are left out.

    Returns:
        dict: ``per_seed`` (seed -> difference, ascending seeds) and the
        :func:`mean_std` of the differences.
    """
    by_model = {}
    for run in runs:
        check_run(run)
        by_model.setdefault((run['row'], run['head']), {})[run['seed']] = run[metric]
    for name in (model, reference):
        if name not in by_model:
            raise ValueError(f'no run of row {name[0]!r}, head {name[1]!r}; the runs have '
                             f'{sorted(by_model)}')
    a, b = by_model[model], by_model[reference]
    per_seed = {s: a[s] - b[s] for s in sorted(set(a) & set(b))
                if a[s] is not None and b[s] is not None}
    return dict(per_seed=per_seed, **mean_std(list(per_seed.values())))
