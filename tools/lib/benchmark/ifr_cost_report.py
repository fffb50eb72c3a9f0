"""The IFR cost benchmark's report: a markdown table per section, and files.

The report is the dict the tool assembles: ``machine``
(:func:`~tools.lib.benchmark.timing.machine`), ``repeats``, ``argv`` and
the sections it ran (``head``, ``e2e``, ``accuracy``), as the section
functions return them.
"""
import os.path as osp
from typing import Dict, List, Tuple

from ..outputs import write_results
from .ifr_cost_targets import targets_markdown


def _f(value, fmt='{:.3f}') -> str:
    # A row measures only some metrics (an inference-only row has no
    # training time): the rest show as '-'.
    if value is None:
        return '-'
    return fmt.format(value)


def _steps(steps: dict) -> str:
    """``fwd / bwd`` solver steps of a training step, ``-`` for none."""
    if not steps:
        return '-'
    return f"{_f(steps.get('fwd_steps'), '{:.1f}')} / {_f(steps.get('bwd_steps'), '{:.1f}')}"


def syncs_markdown(syncs: Dict) -> List[str]:
    """The ``syncs`` section's table: waits per solve, the op's and the refiner's."""

    def pair(row, prefix):
        calls, cuda = row.get(f'{prefix}_calls'), row.get(f'{prefix}_cuda')
        if calls is None:
            return '-'
        return f'{calls}' if cuda is None else f'{calls} / {cuda}'

    lines = [
        '## Host-device synchronisations in one IFR solve', '',
        f"The mask-head refiner of `{syncs['config']}` ({syncs['weights']}), {syncs['rois']} "
        f"RoIs, on {syncs['device']}. Counted: calls that hand a device value to Python or "
        'size a result by the data (`bool`, `.item()`, `int`, `.tolist()`, `nonzero`, boolean '
        'masks)' + ('; after the slash, the synchronisations PyTorch reports '
                    '(`torch.cuda.set_sync_debug_mode`).' if syncs['device'].startswith('cuda')
                    else '.'), '',
        '| solve | op alone | refiner forward | backward | fwd steps | bwd steps |',
        '|---|---|---|---|---|---|'
    ]
    for label, r in syncs['rows'].items():
        lines.append(f"| {label} | {pair(r, 'op')} | {pair(r, 'forward')} | "
                     f"{pair(r, 'backward')} | {_f(r.get('fwd_steps'), '{:.1f}')} | "
                     f"{_f(r.get('bwd_steps'), '{:.1f}')} |")
    return lines + ['']


def markdown(report: Dict) -> str:
    """Render ``report`` as markdown: the machine, then one table per section.

    Args:
        report: The benchmark report (see the module docstring).

    Returns:
        str: The document.
    """
    m = report['machine']
    gpu = (f"{m['gpu']} ({m['gpu_memory_gib']} GiB, CUDA {m['cuda']}; times from CUDA events) "
           'with ' if m.get('gpu') else '')
    lines = [
        '# IFR cost against the stock mask head', '',
        f"Machine: {gpu}{m['cpu']}, {m['logical_cpus']} logical CPUs, {m['threads']} intra-op "
        f"thread(s), torch {m['torch']}; load average at start {m['load_average']}. "
        f"Times: median of {report['repeats']} runs after a warm-up.", ''
    ]
    if report.get('targets'):
        lines += targets_markdown(report['targets'])
    head = report.get('head')
    if head:
        lines += [
            f"## Mask head alone ({head['inputs']})", '',
            f"Inference on {head['num_rois']} RoIs, training step (forward + mask loss + "
            f"backward) and its peak memory on {head['train_rois']} RoIs of "
            f"{'x'.join(map(str, head['roi_shape']))}. Peak memory: peak RSS increase of one "
            'training step in a fresh process (after a warm-up step).', '',
            '| row | infer [s] | infer / stock | fwd steps (infer) | train [s] | train / stock '
            '| fwd / bwd steps (train) | train peak [MiB] | peak / stock | lever |',
            '|---|---|---|---|---|---|---|---|---|---|'
        ]
        for key, r in head['rows'].items():
            inf = r.get('infer_steps', {})
            lines.append(
                f"| {r['label']} | {_f(r.get('infer_s'))} | {_f(r.get('infer_ratio'), '{:.2f}')} | "
                f"{_f(inf.get('fwd_steps'), '{:.1f}')} | {_f(r.get('train_s'))} | "
                f"{_f(r.get('train_ratio'), '{:.2f}')} | {_steps(r.get('train_steps', {}))} | "
                f"{_f(r.get('train_peak_mib'), '{:.0f}')} | "
                f"{_f(r.get('train_peak_ratio'), '{:.2f}')} | {r.get('lever', '')} |")
        lines.append('')
    for name, e2e in (report.get('e2e') or {}).items():
        lines += [
            f'## Whole Mask R-CNN: {name}', '',
            f"Weights: {e2e['weights']}. Data: {e2e['data']}. Detections forced at "
            f"inference: {e2e['forced_detections']}. IFR's own "
            f"test_solver (row `ifr`): {e2e.get('ifr_test_solver')}. "
            f"Device: {e2e.get('device', 'cpu')}.", '',
            '| side | infer [s/img] | infer / stock | of which mask head [s/img] | dets/img | '
            'fwd steps (infer) | train step [s] | train / stock | train peak [MiB] | '
            'peak / stock | pos RoIs/step | fwd / bwd steps (train) |',
            '|---|---|---|---|---|---|---|---|---|---|---|---|'
        ]
        for key, r in e2e['rows'].items():
            inf = r.get('infer_solver', {})
            ratio = _f(r.get('infer_ratio'), '{:.2f}')
            lines.append(
                f"| {key} | {_f(r.get('infer_s_per_img'))} | {ratio} | "
                f"{_f(r.get('mask_head_s_per_img'))} | {_f(r.get('dets_per_image'), '{:.0f}')} | "
                f"{_f(inf.get('fwd_steps'), '{:.1f}')} | {_f(r.get('train_step_s'))} | "
                f"{_f(r.get('train_ratio'), '{:.2f}')} | "
                f"{_f(r.get('train_peak_mib'), '{:.0f}')} | "
                f"{_f(r.get('train_peak_ratio'), '{:.2f}')} | {r.get('pos_rois', '-')} | "
                f"{_steps(r.get('train_solver', {}))} |")
        lines.append('')
    syncs = report.get('syncs')
    if syncs:
        lines += syncs_markdown(syncs)
    acc = report.get('accuracy')
    if acc:
        lines += [
            '## Mask AP against the inference solve (paper Table 7 redone)', '',
            f"Model: `{acc['config']}` / `{acc['checkpoint']}`, {acc['images']} test images; "
            f"trained with {acc['training_solver']}. Backbone + RPN + box head: "
            f"{acc['shared_s_per_img']:.3f} s/img (shared by all rows).", '',
            '| inference solve | mask AP | d AP vs 15 it | AP50 | steps (mean / max) | '
            'mask branch [s/img] | vs 15 it | total [s/img] |', '|---|---|---|---|---|---|---|---|'
        ]
        for r in acc['rows']:
            ap = r['segm_mAP']
            delta = 100 * (r.get('segm_mAP_delta') or 0.0)
            lines.append(
                f"| {r['setting']} | {_f(ap and 100 * ap, '{:.1f}')} | {_f(delta, '{:+.1f}')} | "
                f"{_f(r['segm_mAP_50'] and 100 * r['segm_mAP_50'], '{:.1f}')} | "
                f"{r['solver_steps_mean']:.1f} / {r['solver_steps_max']:.0f} | "
                f"{_f(r['mask_branch_s_per_img'])} | "
                f"{_f(r.get('mask_branch_ratio_vs_reference'), '{:.2f}')} | "
                f"{_f(r['total_s_per_img'])} |")
        if acc.get('baseline'):
            b = acc['baseline']
            lines.append(
                f"| stock head (`{osp.basename(b['checkpoint'])}`) | "
                f"{_f(b['segm_mAP'] and 100 * b['segm_mAP'], '{:.1f}')} | | | | "
                f"mask head {_f(b['mask_head_s_per_img'])} | | {_f(b['total_s_per_img'])} |")
        lines.append('')
    return '\n'.join(lines)


def write_report(report: Dict, out_dir: str, name: str) -> Tuple[str, str]:
    """Write ``<out_dir>/<name>.json`` and ``<out_dir>/<name>.md``.

    Values JSON has no type for are written as their ``str``.

    Returns:
        tuple: The markdown (:func:`markdown`) and the path stem written.
    """
    table = markdown(report)
    stem = osp.join(out_dir, name)
    write_results(stem, report, table + '\n', default=str)
    return table, stem
