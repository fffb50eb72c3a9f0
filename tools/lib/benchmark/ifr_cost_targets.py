"""The IFR cost targets: each measured ratio IFR / stock against its bound.

The project's targets (issue "IFR without the inference tax"): whole-model
inference at most :data:`TARGETS` ``['inference']`` x the stock model's with
mask AP within :data:`AP_TOLERANCE` of the paper's full solve, a training
step at most ``['training']`` x, mask-head training peak memory at most
``['memory']`` x. :func:`target_rows` reads them off a cost report (the
``e2e``, ``head`` and ``accuracy`` sections of the benchmark), one row per
measured IFR setting, ``default`` marking the project's default config.
"""
from typing import Dict, List, Optional

from tools.lib.seed_study import mean_std

#: Upper bounds of the ratio IFR / stock, per target.
TARGETS = dict(inference=1.2, training=1.5, memory=1.0)
#: The inference target also bounds the mask AP lost to a cheaper solve
#: (points, against the paper's full solve on the same checkpoint).
AP_TOLERANCE = 0.3
#: The accuracy section labels the project's default inference solve so.
DEFAULT_SETTING_PREFIX = 'project default test_solver'


def machine_label(machine: Dict) -> str:
    """One line naming the machine of a report's ``machine`` dict."""
    return (f"{machine['cpu']}, {machine['logical_cpus']} logical CPUs, "
            f"{machine['threads']} thread(s), torch {machine['torch']}")


def default_ap_deltas(accuracy_sections: List[Dict]) -> List[float]:
    """Mask AP (points) of the default inference solve minus the paper's
    full solve, one value per evaluated checkpoint that has both rows."""
    deltas = []
    for section in accuracy_sections:
        for row in section['rows']:
            if row['setting'].startswith(DEFAULT_SETTING_PREFIX) and \
                    row.get('segm_mAP_delta') is not None:
                deltas.append(100 * row['segm_mAP_delta'])
    return deltas


def _e2e_model(name: str) -> str:
    return 'demo' if name == 'mbv2' else name


def target_rows(report: Dict) -> List[Dict]:
    """The target table of a cost report.

    Args:
        report: The benchmark report; ``accuracy_seeds`` (a list of
            accuracy sections, one per checkpoint) is read if present, else
            ``accuracy``.

    Returns:
        list[dict]: Rows with ``target`` (``'inference'``, ``'training'``,
        ``'memory'``), ``model`` (``'demo'``, ``'r50'``; the mask head alone
        counts as the demo's with its trained weights and real RoIs, else as
        R-50's, whose head it then is: random weights), ``setting`` (the report's row), ``ratio``
        (IFR / stock), ``bound``, ``met``, ``default``, ``steps`` (solver
        steps per RoI, forward), ``weights``, ``mask_ap_delta`` and
        ``mask_ap_delta_std`` (points, mean and std over checkpoints; demo
        inference rows of the default solve only, else ``None``) and
        ``machine``.
    """
    machine = machine_label(report['machine'])
    accuracy = report.get('accuracy_seeds') or ([report['accuracy']]
                                                if report.get('accuracy') else [])
    deltas = default_ap_deltas(accuracy)
    rows = []

    def add(target: str, model: str, setting: str, ratio: Optional[float], default: bool,
            steps: Optional[float], weights: str, delta: Optional[List[float]] = None) -> None:
        if ratio is None:
            return
        stats = mean_std(delta or [])
        mean = stats['mean']
        # One checkpoint has no spread to report (mean_std's 0 would read as one).
        std = stats['std'] if stats['n'] > 1 else None
        met = ratio <= TARGETS[target]
        if mean is not None:
            met = met and abs(mean) <= AP_TOLERANCE
        rows.append(
            dict(
                target=target,
                model=model,
                setting=setting,
                ratio=ratio,
                bound=TARGETS[target],
                met=met,
                default=default,
                steps=steps,
                weights=weights,
                mask_ap_delta=mean,
                mask_ap_delta_std=std,
                machine=machine))

    for name, e2e in (report.get('e2e') or {}).items():
        model = _e2e_model(name)
        for key, r in e2e['rows'].items():
            if key == 'stock':
                continue
            default = key == 'ifr'
            add('inference', model, key, r.get('infer_ratio'), default,
                (r.get('infer_solver') or {}).get('fwd_steps'), e2e['weights'],
                deltas if default and model == 'demo' else None)
            add('training', model, key, r.get('train_ratio'), default,
                (r.get('train_solver') or {}).get('fwd_steps'), e2e['weights'])
    head = report.get('head')
    if head:
        model = 'r50' if head['inputs'] == 'random' else 'demo'
        for key, r in head['rows'].items():
            if key == 'stock':
                continue
            add('memory', model, key, r.get('train_peak_ratio'), key == 'default',
                (r.get('train_steps') or {}).get('fwd_steps'), head['inputs'])
    return rows


def targets_markdown(rows: List[Dict]) -> List[str]:
    """Markdown lines of the target table (default rows first)."""
    lines = [
        '## Targets (ratio IFR / stock)', '',
        '| target | model | setting | ratio | bound | met | steps/RoI | '
        'mask AP vs full solve | default |', '|---|---|---|---|---|---|---|---|---|'
    ]
    for r in sorted(rows, key=lambda r: (not r['default'], r['target'], r['model'])):
        if r['mask_ap_delta'] is None:
            delta = '-'
        else:
            delta = f"{r['mask_ap_delta']:+.2f}"
            if r['mask_ap_delta_std'] is not None:
                delta += f" +- {r['mask_ap_delta_std']:.2f}"
        steps = '-' if r['steps'] is None else f"{r['steps']:.1f}"
        lines.append(f"| {r['target']} | {r['model']} | {r['setting']} | {r['ratio']:.2f} | "
                     f"<= {r['bound']:g} | {'yes' if r['met'] else 'no'} | {steps} | {delta} | "
                     f"{'yes' if r['default'] else ''} |")
    lines.append('')
    return lines
