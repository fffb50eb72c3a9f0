"""The demo model-zoo table: a row per framework of the paper, from the seed studies' result files.

A manifest (``configs/ifr/demo/model_zoo_demo.yml``) names, per framework, the result files of its
demo pair (``tools/benchmark_model_zoo.py --seeds``: ``docs/results/<name>.json``, and the same runs
scored on the held-out images), the row in them, and its entries in the paper's metafile
(``configs/ifr/metafile.yml``). :func:`build_table` reads them into rows: stock and IFR as mean,
sample std and per-seed values, IFR - stock paired by seed, the held-out scores, whether the row
compares anything (``comparable``) and what it says (``verdict``), the paper's baseline and IFR
numbers and mmdet's own model-zoo number for the baseline config (from mmdet's metafiles).
:func:`table_markdown` renders it; ``tools/write_model_zoo_table.py`` writes both, the table block
of ``configs/ifr/README.md`` and the summary block of ``README.md`` (:func:`markers`).
"""
import functools
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

import yaml

import mmdet
from .models import resolve_path
from .seed_study import mean_std

#: A comparable row's stock side reaches this on val, by metric (video: VIS AP).
LEARNED_AP = dict(mask=20.0, box=20.0, vis=12.0)
#: Seeds a comparable row needs.
MIN_SEEDS = 3
#: The run key and the metafile metric of each table metric.
RUN_KEY = dict(mask='segm_AP', box='bbox_AP', vis='segm_AP')
MMDET_METRIC = dict(mask='mask AP', box='box AP', vis='AP')
#: What the IFR side of every row is trained with.
PROTOCOL = ('the paper\'s protocol: the unrolled warm-up (4 evaluations) for the first 5/9 of the '
            'schedule, then the Broyden solve with implicit gradients')
#: The blocks the tool writes: the table (configs/ifr/README.md) and the summary (README.md).
TABLE_BLOCK, SUMMARY_BLOCK = 'model_zoo_demo', 'model_zoo_summary'
MANIFEST_KEYS = {'framework', 'paper', 'metric', 'results', 'row'}
OPTIONAL_KEYS = {'heldout', 'reason', 'control', 'note', 'ifr_config'}


def load_manifest(path: str) -> List[dict]:
    """The rows of a manifest, checked.

    Raises:
        ValueError: naming the row and the missing or unknown key, or the bad metric.
    """
    with open(resolve_path(path)) as f:
        rows = yaml.safe_load(f)['rows']
    for row in rows:
        name = row.get('framework', row)
        missing = sorted(MANIFEST_KEYS - set(row))
        unknown = sorted(set(row) - MANIFEST_KEYS - OPTIONAL_KEYS)
        if missing or unknown:
            raise ValueError(f'{path}: row {name!r}: missing key(s) {missing}, unknown key(s) '
                             f'{unknown}; allowed: {sorted(MANIFEST_KEYS | OPTIONAL_KEYS)}')
        if row['metric'] not in RUN_KEY:
            raise ValueError(f"{path}: row {name!r}: metric={row['metric']!r}; allowed: "
                             f'{list(RUN_KEY)}')
    return rows


def _runs(results_dir: str, filename: str, row: str, head: str,
          label: Optional[str] = None) -> List[dict]:
    with open(osp.join(results_dir, filename)) as f:
        runs = json.load(f)['runs']
    picked = [r for r in runs if r['row'] == row and r['head'] == head
              and (label is None or r.get('label') == label)]
    if not picked:
        raise ValueError(f'{filename}: no {head} run of row {row!r}'
                         + (f' labelled {label!r}' if label else ''))
    return sorted(picked, key=lambda r: r['seed'])


def _side(runs: List[dict], key: str) -> dict:
    values = {r['seed']: r[key] for r in runs if r.get(key) is not None}
    stat = mean_std(list(values.values()))
    return dict(stat, per_seed={str(s): v for s, v in values.items()})


def _paired(stock: dict, ifr: dict) -> dict:
    seeds = sorted(set(stock['per_seed']) & set(ifr['per_seed']), key=int)
    deltas = [ifr['per_seed'][s] - stock['per_seed'][s] for s in seeds]
    return dict(mean_std(deltas), per_seed={s: d for s, d in zip(seeds, deltas)})


def _metafile_models(path: str) -> List[dict]:
    with open(path) as f:
        return yaml.safe_load(f)['Models']


def paper_numbers(paper: str, metafile: str) -> dict:
    """``baseline`` and ``ifr`` AP of a model of the paper's metafile, and its
    baseline config."""
    (model, ) = [m for m in _metafile_models(metafile) if m['Name'] == paper] or [None]
    if model is None:
        raise ValueError(f'{metafile} has no model {paper!r}')
    results = model['Paper Results']
    return dict(baseline=results['Baseline']['AP'], ifr=results['IFR']['AP'],
                table=results['Table'], baseline_config=model['Baseline Config'])


def mmdet_number(baseline_config: str, metric: str) -> Optional[dict]:
    """mmdet's model-zoo number of an ``mmdet::`` baseline config (from the
    metafile beside it in the installed mmdet), or ``None`` for a config
    mmdet does not ship (mmifr's ports)."""
    if not baseline_config.startswith('mmdet::'):
        return None
    rel = baseline_config[len('mmdet::'):]
    metafile = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', osp.dirname(rel),
                        'metafile.yml')
    for model in _metafile_models(metafile):
        if model.get('Config') == f'configs/{rel}':
            for result in model.get('Results', []):
                value = result.get('Metrics', {}).get(MMDET_METRIC[metric])
                if value is not None:
                    return dict(value=value, model=model['Name'])
    return None


@functools.lru_cache(maxsize=None)
def refined_towers(config: str) -> Tuple[str, ...]:
    """The towers an IFR config refines, as dotted paths in the model
    (``roi_head.mask_head.convs``, ``mask_head.mask_convs``, ...)."""
    from mmengine.config import Config

    import mmifr  # noqa: F401  (registers the IFR heads)
    from mmdet.registry import MODELS

    towers: List[str] = []

    def walk(node, path):
        if isinstance(node, dict):
            cls = MODELS.get(node['type']) if isinstance(node.get('type'), str) else None
            if cls is not None and getattr(cls, 'ifr_towers', None):
                names = node.get('ifr_towers') or cls.ifr_towers
                towers.extend(f'{path}.{t}' if path else t for t in names)
            for key, value in node.items():
                walk(value, f'{path}.{key}' if path else key)
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                walk(value, f'{path}.{i}')

    walk(Config.fromfile(resolve_path(config)).model.to_dict(), '')
    # HTC / Cascade list one head per stage: one entry per tower kind.
    return tuple(sorted({'.'.join(p for p in t.split('.') if not p.isdigit()) for t in towers}))


def verdict(delta: dict, stock: dict, ifr: dict) -> str:
    """``ahead`` / ``behind`` where IFR - stock exceeds the sum of the two
    sides' seed spreads, else ``level``."""
    spread = stock['std'] + ifr['std']
    if delta['mean'] > spread:
        return 'ahead'
    if delta['mean'] < -spread:
        return 'behind'
    return 'level'


def build_row(spec: dict, results_dir: str, metafile: str) -> dict:
    """One table row from its manifest entry (see the module docstring)."""
    metric, key = spec['metric'], RUN_KEY[spec['metric']]
    stock_runs = _runs(results_dir, spec['results'], spec['row'], 'baseline')
    ifr_runs = _runs(results_dir, spec['results'], spec['row'], 'ifr')
    stock, ifr = _side(stock_runs, key), _side(ifr_runs, key)
    paper = paper_numbers(spec['paper'], metafile)
    # The config the IFR runs were trained with, where the row's own config
    # has changed since (e.g. its default towers).
    trained = spec.get('ifr_config') or ifr_runs[0]['config']
    row = dict(
        framework=spec['framework'], metric=metric,
        schedule=dict(iterations=ifr_runs[0]['iterations']),
        configs=dict(stock=stock_runs[0]['config'], ifr=trained),
        ifr_towers=list(refined_towers(trained)),
        seeds=sorted(set(int(s) for s in stock['per_seed']) & set(int(s) for s in ifr['per_seed'])),
        stock=stock, ifr=ifr, delta=_paired(stock, ifr),
        results=spec['results'],
        paper=dict(table=paper['table'], baseline=paper['baseline'], ifr=paper['ifr'],
                   delta=round(paper['ifr'] - paper['baseline'], 1)),
        mmdet=mmdet_number(paper['baseline_config'], metric),
    )
    if spec.get('heldout'):
        h_stock = _side(_runs(results_dir, spec['heldout'], spec['row'], 'baseline'), key)
        h_ifr = _side(_runs(results_dir, spec['heldout'], spec['row'], 'ifr'), key)
        row['heldout'] = dict(stock=h_stock, ifr=h_ifr, delta=_paired(h_stock, h_ifr),
                              results=spec['heldout'])
    else:
        row['heldout'] = None
    if spec.get('control'):
        row['control'] = _control(spec['control'], results_dir, key, ifr, row['heldout'])
    default_towers = list(refined_towers(ifr_runs[0]['config']))
    row['comparable'], reason = _comparable(row, spec, default_towers)
    if reason:
        row['reason'] = reason
    row['verdict'] = verdict(row['delta'], stock, ifr) if row['comparable'] else None
    if spec.get('note'):
        row['note'] = spec['note']
    return row


def _control(spec: dict, results_dir: str, key: str, ifr: dict,
             heldout: Optional[dict]) -> dict:
    """A control column (another stock variant, e.g. the stock head with
    GroupNorm): its scores, IFR - control paired by seed, and the same on the
    held-out images where the manifest names its held-out file."""
    check = sorted(set(spec) - {'name', 'results', 'row', 'head', 'label', 'heldout'})
    if check or not {'name', 'results', 'row'} <= set(spec):
        raise ValueError(f"control {spec.get('name')!r}: keys {sorted(spec)}; it needs name, "
                         'results and row, and may have head, label and heldout')

    def side(filename):
        return _side(_runs(results_dir, filename, spec['row'], spec.get('head', 'baseline'),
                           spec.get('label')), key)

    control = side(spec['results'])
    out = dict(name=spec['name'], **control, delta=_paired(control, ifr),
               results=spec['results'], heldout=None)
    if spec.get('heldout'):
        if heldout is None:
            raise ValueError(f"control {spec['name']!r} has held-out results, its row has none")
        held = side(spec['heldout'])
        out['heldout'] = dict(control=held, delta=_paired(held, heldout['ifr']),
                              results=spec['heldout'])
    return out


def _comparable(row: dict, spec: dict, default_towers: List[str]):
    """``(comparable, reason)``: a row compares when its stock side has
    learned (:data:`LEARNED_AP` on val) over :data:`MIN_SEEDS` paired seeds
    and its IFR runs refine the towers of the default IFR config (the
    paper's placement); the manifest's ``reason`` adds what was measured
    where it does not."""
    problems = []
    if row['ifr_towers'] != default_towers:
        problems.append(f"the IFR runs refine {', '.join(row['ifr_towers'])}, the default "
                        f"config {', '.join(default_towers)}: to be retrained")
    if row['stock']['mean'] < LEARNED_AP[row['metric']]:
        problems.append(f"the stock side has not learned ({row['stock']['mean']:.1f} "
                        f"< {LEARNED_AP[row['metric']]:.0f} AP on val)")
    if len(row['seeds']) < MIN_SEEDS:
        problems.append(f"{len(row['seeds'])} paired seed(s), fewer than {MIN_SEEDS}")
    if not problems:
        return True, None
    reason = '; '.join(problems)
    if spec.get('reason'):
        reason += f"; {spec['reason']}"
    return False, reason


def build_table(manifest: str, results_dir: str = 'docs/results',
                metafile: str = 'configs/ifr/metafile.yml') -> dict:
    """The whole table: ``rows`` (one per manifest entry), ``protocol``
    (how the IFR sides are trained) and the comparability rule."""
    results_dir, metafile = resolve_path(results_dir), resolve_path(metafile)
    rows = [build_row(spec, results_dir, metafile) for spec in load_manifest(manifest)]
    return dict(
        protocol=PROTOCOL,
        comparable_rule=(f'the stock side reaches {LEARNED_AP["mask"]:.0f} AP (video: '
                         f'{LEARNED_AP["vis"]:.0f} VIS AP) on val, over at least {MIN_SEEDS} '
                         'paired seeds'),
        verdict_rule='ahead / behind where IFR - stock exceeds the sum of the two seed stds, '
        'else level',
        rows=rows)


def _pm(stat: Optional[dict], signed: bool = False) -> str:
    if not stat or stat.get('mean') is None:
        return '-'
    mean = f"{stat['mean']:+.1f}" if signed else f"{stat['mean']:.1f}"
    return f"{mean} +- {stat['std']:.1f}" if stat['n'] > 1 else mean


def table_markdown(table: dict) -> str:
    """The table as Markdown (what configs/ifr/README.md embeds)."""
    lines = [
        '| framework | metric | iterations | IFR in | seeds | stock (val) | IFR (val) | '
        'IFR - stock | held-out IFR - stock | compares? | paper stock / IFR | mmdet zoo |',
        '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |'
    ]
    for row in table['rows']:
        held = row['heldout']
        if row['comparable']:
            compares = f"**{row['verdict']}**"
        else:
            compares = f"no: {row['reason']}"
        if row.get('control'):
            control = row['control']
            control_held = control['heldout']
            compares += (f"; {control['name']}: {_pm(control)}, IFR - it "
                         f"{_pm(control['delta'], True)}"
                         + (f" (held out {_pm(control_held['delta'], True)})"
                            if control_held else ''))
        if row.get('note'):
            compares += f"; {row['note']}"
        mmdet_zoo = '-' if row['mmdet'] is None else f"{row['mmdet']['value']}"
        lines.append(
            f"| {row['framework']} | {row['metric']} | {row['schedule']['iterations']} | "
            f"{', '.join(f'`{t}`' for t in row['ifr_towers'])} | "
            f"{', '.join(map(str, row['seeds']))} | {_pm(row['stock'])} | {_pm(row['ifr'])} | "
            f"{_pm(row['delta'], True)} | {_pm(held['delta'], True) if held else '-'} | "
            f"{compares} | {row['paper']['baseline']} / {row['paper']['ifr']} | {mmdet_zoo} |")
    comparable = [r for r in table['rows'] if r['comparable']]
    lines += [
        '',
        f"IFR sides: {table['protocol']}. A row compares when {table['comparable_rule']}; "
        f"{table['verdict_rule']}. {len(comparable)} of {len(table['rows'])} rows compare.",
    ]
    return '\n'.join(lines) + '\n'


def summary_sentence(table: dict) -> str:
    """One sentence of what the table says, for the README."""
    by_verdict: Dict[str, List[str]] = {}
    for row in table['rows']:
        if row['comparable']:
            by_verdict.setdefault(row['verdict'], []).append(
                f"{row['framework']} ({_pm(row['delta'], True)})")
    others = [r['framework'] for r in table['rows'] if not r['comparable']]
    parts = [f"{v} on {', '.join(names)}" for v, names in sorted(by_verdict.items())]
    return (f"Of the {len(table['rows'])} frameworks, {len(table['rows']) - len(others)} compare "
            f"on the demo data: IFR is {'; '.join(parts) or 'nowhere compared'}; "
            f"{len(others)} do not compare yet ({', '.join(others)}).")


def markers(name: str):
    """The comment lines that open and close block ``name`` of a Markdown file."""
    return (f'<!-- {name}: begin (tools/write_model_zoo_table.py writes this block) -->',
            f'<!-- {name}: end -->')


def _span(text: str, name: str):
    begin, end = markers(name)
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise ValueError(f'the text has no {begin!r} ... {end!r} block')
    return start + len(begin) + 1, stop


def embed(text: str, block: str, name: str = TABLE_BLOCK) -> str:
    """``text`` with its block ``name`` replaced by ``block``."""
    start, stop = _span(text, name)
    return text[:start] + block + text[stop:]


def embedded(text: str, name: str = TABLE_BLOCK) -> str:
    """Block ``name`` of ``text``."""
    start, stop = _span(text, name)
    return text[start:stop]
