"""The cost / accuracy frontier of IFR recipes against the stock mask head.

A point is one training recipe (a seed study row's IFR side) run with one
inference budget: ``K`` plain block evaluations, the model's own inference,
or the full solve. For each seed, the recipe's model and the row's stock
model are evaluated on the same images, interleaved image by image
(:func:`~.ifr_cost_accuracy.run_accuracy`): the x value is the whole-model
inference time against the stock model's, the y value the mask AP against
the stock model's of the same seed; both are aggregated over seeds
(mean +- std). The relative distance of the ``K``-th iterate to the fixed
point on ground-truth RoIs says how far each budget is from the equilibrium.
"""
import math
import os.path as osp
from argparse import Namespace
from typing import Dict, List, Sequence, Tuple

import torch

from mmifr.engine.hooks import find_refiners
from ..models import build_detector, build_loader
from ..roi_features import gt_roi_features
from ..seed_study import mean_std
from .ifr_cost_accuracy import run_accuracy
from .solves import EXACT_SOLVE

#: The full solve of a frontier: the paper's Broyden (15 steps, tol 1e-3).
FULL_SOLVE = dict(solver='broyden', max_iter=15, tol=1e-3)
#: Label of a model's own inference (its configured ``test_solver``).
OWN = 'own inference'


def frontier_settings(budgets: Sequence[int]) -> List[Tuple[str, dict]]:
    """``(label, test_solver)`` of each point: ``K=k`` for each budget, then
    the full solve. (The model's own inference is added by the caller.)"""
    settings = [(f'K={k}', dict(solver='unroll', max_iter=k)) for k in budgets]
    return settings + [('full solve', dict(FULL_SOLVE))]


@torch.no_grad()
def iterate_residuals(config: str, checkpoint: str, budgets: Sequence[int],
                      max_rois: int = 128) -> Dict[str, float]:
    """Mean relative distance ``||h_K - H*|| / ||H*||`` of the ``K``-th
    iterate from the fixed point, on the mask RoIs of ground-truth boxes.

    Returns:
        dict: ``{'K=k': distance}`` for each budget, ``'full solve'`` and
        the model's own inference.
    """
    model, cfg = build_detector(config, {}, checkpoint)
    (refiner, *_) = find_refiners(model).values()
    feats, _ = gt_roi_features(model, build_loader(cfg, None), max_rois=max_rois)
    previous = refiner.test_solver

    def solve(setting: dict) -> torch.Tensor:
        refiner.set_test_solver(setting)
        return refiner(feats)

    exact = solve(EXACT_SOLVE)
    out = {}
    for label, setting in [(OWN, previous)] + frontier_settings(budgets):
        h = solve(setting)
        dist = (h - exact).flatten(1).norm(dim=1) / exact.flatten(1).norm(dim=1).clamp_min(1e-8)
        out[label] = dist.mean().item()
    refiner.set_test_solver(previous)
    return out


def frontier_point(recipe: str, setting: str, runs: List[dict]) -> dict:
    """One point from the per-seed runs of one recipe and setting."""
    ratios = [r['cost_ratio'] for r in runs]
    deltas = [r['segm_AP_delta'] for r in runs]
    aps = [r['segm_AP'] for r in runs]
    point = dict(recipe=recipe, setting=setting, seeds=[r['seed'] for r in runs],
                 cost_ratio=mean_std(ratios), segm_AP=mean_std(aps),
                 segm_AP_delta=mean_std(deltas), runs=runs)
    residuals = [r['iterate_residual'] for r in runs if r.get('iterate_residual') is not None]
    if residuals:
        point['iterate_residual'] = mean_std(residuals)
    return point


def merge_points(reports: Sequence[dict]) -> List[dict]:
    """The points of several frontier reports (``<out>.json`` of runs on
    other seeds, e.g. two processes side by side), re-aggregated from their
    per-seed runs.

    Args:
        reports: the reports' contents (``points``, each with its ``runs``).

    Returns:
        list[dict]: one :func:`frontier_point` per recipe and setting, in the
        order they first appear.

    Raises:
        ValueError: when two reports hold the same recipe, setting and seed.
    """
    runs: Dict[Tuple[str, str], List[dict]] = {}
    for report in reports:
        for point in report['points']:
            merged = runs.setdefault((point['recipe'], point['setting']), [])
            seen = {r['seed'] for r in merged}
            twice = sorted(seen & {r['seed'] for r in point['runs']})
            if twice:
                raise ValueError(f"{point['recipe']} / {point['setting']}: seed(s) {twice} are in "
                                 'more than one report')
            merged.extend(point['runs'])
    return [frontier_point(recipe, setting, rs) for (recipe, setting), rs in runs.items()]


def evaluate_recipe(recipe: dict, seed: int, budgets: Sequence[int],
                    num_images=None) -> List[dict]:
    """Every setting of one recipe's model of one seed against its stock twin.

    Args:
        recipe: ``name``, ``config``, ``checkpoint`` (the IFR model) and
            ``stock_config``, ``stock_checkpoint``.
        seed: recorded with each run.
        budgets: the ``K`` values.
        num_images: evaluate on the first N test images only.

    Returns:
        list[dict]: one run per setting: ``setting``, ``segm_AP``,
        ``segm_AP_delta`` (against the stock model), ``cost_ratio`` (whole
        model, against the stock model), ``iterate_residual``.
    """
    settings = [(OWN, None)] + frontier_settings(budgets)
    args = Namespace(config=recipe['config'], checkpoint=recipe['checkpoint'],
                     baseline_config=recipe['stock_config'],
                     baseline_checkpoint=recipe['stock_checkpoint'],
                     num_eval_images=num_images)
    report = run_accuracy(args, settings=settings)
    residuals = iterate_residuals(recipe['config'], recipe['checkpoint'], budgets)
    stock = report['baseline']
    return [
        dict(seed=seed, setting=row['setting'], test_solver=row['test_solver'],
             segm_AP=100 * row['segm_mAP'], stock_segm_AP=100 * stock['segm_mAP'],
             segm_AP_delta=100 * (row['segm_mAP'] - stock['segm_mAP']),
             cost_ratio=row['total_s_per_img'] / stock['total_s_per_img'],
             solver_steps=row['solver_steps_mean'],
             iterate_residual=residuals.get(row['setting'])) for row in report['rows']
    ]


def plot_frontier(points: List[dict], path: str, title: str) -> None:
    """The frontier as a PNG: x = inference cost / stock, y = mask AP - stock
    (mean +- std over seeds), one marker series per recipe."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5.5))
    recipes = list(dict.fromkeys(p['recipe'] for p in points))
    for i, recipe in enumerate(recipes):
        pts = [p for p in points if p['recipe'] == recipe]
        pts = _merge_own_inference(pts)
        xs = [p['cost_ratio']['mean'] for p in pts]
        ys = [p['segm_AP_delta']['mean'] for p in pts]
        xerr = [p['cost_ratio']['std'] for p in pts]
        yerr = [p['segm_AP_delta']['std'] for p in pts]
        ax.errorbar(xs, ys, xerr=xerr, yerr=yerr, fmt='o', capsize=3, label=recipe,
                    color=f'C{i}')
        for p, x, y in zip(pts, xs, ys):
            ax.annotate(p['setting'], (x, y), textcoords='offset points', xytext=(5, 4),
                        fontsize=8, color=f'C{i}')
    ax.axhline(0, color='grey', lw=0.8, ls='--')
    ax.axvline(1, color='grey', lw=0.8, ls='--')
    ax.text(1.0, ax.get_ylim()[0], ' stock model', color='grey', fontsize=8, va='bottom')
    ax.set_xlabel('whole-model inference time / stock model (same images, interleaved)')
    ax.set_ylabel('mask AP - stock model\'s (same seed), points')
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc='lower right')
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _merge_own_inference(points: List[dict]) -> List[dict]:
    """A model's own inference drawn once: where it is one of the budgets
    (a budget model's), that point's label says so instead."""
    own = next((p for p in points if p['setting'] == OWN), None)
    if own is None:
        return points
    twin = next((p for p in points if p is not own and p['segm_AP'] == own['segm_AP']
                 and p.get('iterate_residual') == own.get('iterate_residual')), None)
    if twin is None:
        return points
    return [dict(p, setting=f"{p['setting']} (own)") if p is twin else p
            for p in points if p is not own]


def frontier_markdown(points: List[dict], title: str) -> str:
    """The points as a Markdown table."""

    def fmt(stat, digits=1):
        if stat is None or stat['mean'] is None or math.isnan(stat['mean']):
            return '-'
        return f"{stat['mean']:.{digits}f} +- {stat['std']:.{digits}f}"

    lines = [f'# {title}', '',
             '| recipe | inference | cost vs stock | mask AP | mask AP - stock | '
             'distance of h_K to H* (relative) | seeds |', '|---|---|---|---|---|---|---|']
    for p in points:
        lines.append(f"| {p['recipe']} | {p['setting']} | {fmt(p['cost_ratio'], 2)} | "
                     f"{fmt(p['segm_AP'])} | {fmt(p['segm_AP_delta'])} | "
                     f"{fmt(p.get('iterate_residual'), 3)} | "
                     f"{', '.join(map(str, p['seeds']))} |")
    return '\n'.join(lines) + '\n'


def checkpoint_of(work_dir: str) -> str:
    """The checkpoint a seed-study run directory recorded last."""
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()
