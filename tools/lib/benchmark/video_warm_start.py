"""What the video warm start saves: solver steps, time and VIS AP per setting.

One trained IFR video model (an :class:`~mmifr.models.vis.VideoWarmStartMixin`
model) runs every test clip under each setting of its ``warm_start``
(``set_warm_start``): cold (every frame from zero, the paper's inference),
warm to the tolerance, and warm with fixed budgets; its stock twin runs the
same clips. The settings take turns clip by clip, in a rotating order, so a
change of machine load falls on all of them alike; ratios are taken within
the run.
"""
import copy
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.evaluator import Evaluator
from torch import Tensor, nn

from mmifr.engine.hooks import find_refiners
from mmifr.models.layers import WARM_START_DEFAULTS
from ..models import build_detector, build_loader
from ..progress import log

#: The metric keys of mmdet's YouTubeVISMetric and the names the report gives them.
VIS_KEYS = dict(AP='youtube_vis/segm_mAP', AP50='youtube_vis/segm_mAP_50',
                AP75='youtube_vis/segm_mAP_75', AR1='youtube_vis/segm_AR@1',
                AR10='youtube_vis/segm_AR@10')


#: The thresholds :func:`match_calibration` reports.
CALIBRATION_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 1.0, 1.25, 1.5)
#: The share of matched samples whose previous equilibrium must be nearer
#: than the zero start for a threshold to be suggested.
SUGGEST_SHARE = 0.99


def warm_start_settings(budgets: Sequence[int],
                        match_thr: Optional[float] = None) -> List[Tuple[str, Optional[dict]]]:
    """``(name, warm_start)`` of each setting: ``cold``, ``warm`` (to the
    tolerance), then ``warm_budget<k>`` for each budget."""
    extra = {} if match_thr is None else dict(match_thr=match_thr)
    return ([('cold', dict(enabled=False)), ('warm', dict(enabled=True, budget=None, **extra))] +
            [(f'warm_budget{k}', dict(enabled=True, budget=k, **extra)) for k in budgets])


def _evaluator(cfg, metainfo: dict, out_dir: str, name: str) -> Evaluator:
    ev_cfg = copy.deepcopy(cfg.test_evaluator)
    ev_cfg['outfile_prefix'] = f'{out_dir}/{name}'
    evaluator = Evaluator(ev_cfg)
    evaluator.dataset_meta = metainfo
    return evaluator


def _run_clip(model: nn.Module, batch: dict) -> Tuple[list, float, int]:
    """The model's predictions of one clip, its wall time and frames."""
    batch = copy.deepcopy(batch)
    start = time.perf_counter()
    data = model.data_preprocessor(batch, False)
    out = model(**data, mode='predict')
    return out, time.perf_counter() - start, len(out[0])


def run_warm_start(config: str, checkpoint: str, stock_config: str, stock_checkpoint: str,
                   budgets: Sequence[int] = (1, 2, 3), num_videos: Optional[int] = None,
                   match_thr: Optional[float] = None,
                   options: Optional[dict] = None) -> Dict:
    """Evaluate every warm-start setting of a trained IFR video model and
    its stock twin on the same clips, interleaved.

    Args:
        config, checkpoint: the IFR video model.
        stock_config, stock_checkpoint: the stock model of the pair.
        budgets: the fixed budgets (block evaluations per warm-started solve).
        num_videos: the first N test clips only (``None``: all).
        match_thr: ``warm_start.match_thr`` of the warm settings
            (``None``: the model's).
        options: dotted-key overrides of both configs (e.g. the data root).

    Returns:
        dict: ``settings`` (the names below, in order) and, under each name
        (``cold``, ``warm``, ``warm_budget<k>``, ``stock``), ``vis_ap``
        with AP, AP50, AP75, AR1, AR10 in points, ``ms_per_frame``,
        ``steps_per_frame`` (block evaluations per solved sample, i.e. per
        mask RoI or per feature map and tower, averaged over every frame),
        ``evaluations_per_frame`` (their sum per frame), ``frames``), and
        the ratios against the cold start and the stock model.
    """
    model, cfg = build_detector(config, options, checkpoint)
    if not hasattr(model, 'set_warm_start'):
        raise ValueError(f'{config}: {type(model).__name__} has no warm start (a video model '
                         'with VideoWarmStartMixin, e.g. IFRMaskTrackRCNN, has)')
    stock, _ = build_detector(stock_config, options, stock_checkpoint)
    refiners = list(find_refiners(model).values())
    model_cfg = dict(model.warm_start_cfg or {})
    settings = dict(warm_start_settings(budgets, match_thr))
    names = list(settings) + ['stock']
    loader = build_loader(cfg, num_videos)
    metainfo = loader.dataset.metainfo if hasattr(loader.dataset, 'metainfo') else (
        loader.dataset.dataset.metainfo)
    record = {name: dict(seconds=0.0, frames=0, steps=[]) for name in names}
    with tempfile.TemporaryDirectory() as out_dir, torch.no_grad():
        evaluators = {name: _evaluator(cfg, metainfo, out_dir, name) for name in names}
        started = time.perf_counter()
        for i, batch in enumerate(loader):
            # A rotating order: no setting always runs first (or after another).
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                if name == 'stock':
                    out, seconds, frames = _run_clip(stock, batch)
                else:
                    model.set_warm_start(settings[name])
                    for r in refiners:
                        r.pop_stats()
                    out, seconds, frames = _run_clip(model, batch)
                    record[name]['steps'] += [
                        s.forward.nstep for r in refiners for s in r.pop_stats()]
                record[name]['seconds'] += seconds
                record[name]['frames'] += frames
                evaluators[name].process(data_samples=out, data_batch=batch)
            elapsed = time.perf_counter() - started
            log(f'[video warm start] clip {i + 1}/{len(loader)}, {elapsed:.0f} s, '
                f'eta {elapsed / (i + 1) * (len(loader) - i - 1):.0f} s')
        results = {}
        for name in names:
            metrics = evaluators[name].evaluate(len(loader))
            rec = record[name]
            steps = torch.cat(rec['steps']).float() if rec['steps'] else None
            results[name] = dict(
                warm_start=settings.get(name),
                frames=rec['frames'],
                ms_per_frame=1000 * rec['seconds'] / rec['frames'],
                vis_ap={k: 100 * metrics[v] for k, v in VIS_KEYS.items()},
                steps_per_frame=None if steps is None else steps.mean().item(),
                evaluations_per_frame=None if steps is None else (steps.sum().item() /
                                                                  rec['frames']))
    model.set_warm_start(model_cfg or None)
    cold = results['cold']
    for name, row in results.items():
        row['ms_vs_stock'] = row['ms_per_frame'] / results['stock']['ms_per_frame']
        row['ms_vs_cold'] = row['ms_per_frame'] / cold['ms_per_frame']
        if row['steps_per_frame'] is not None:
            row['steps_vs_cold'] = row['steps_per_frame'] / cold['steps_per_frame']
            row['vis_ap_vs_cold'] = row['vis_ap']['AP'] - cold['vis_ap']['AP']
    used_thr = match_thr if match_thr is not None else model_cfg.get(
        'match_thr', WARM_START_DEFAULTS['match_thr'])
    return dict(config=config, checkpoint=checkpoint, stock_config=stock_config,
                stock_checkpoint=stock_checkpoint, videos=len(loader),
                options=dict(options or {}), model_warm_start=model_cfg, match_thr=used_thr,
                settings=list(results),
                **results)


def match_calibration(config: str, checkpoint: str, split: str = 'train',
                      num_videos: Optional[int] = 10, options: Optional[dict] = None,
                      thresholds: Sequence[float] = CALIBRATION_THRESHOLDS) -> Dict:
    """How far the previous frame's equilibrium is from the new one, as a
    function of how far apart their inputs are: what ``match_thr`` should be.

    Every frame is solved to the tolerance from the equilibrium of the
    nearest previous input (every sample matched), on the clips of ``split``
    (``'train'``: the threshold is chosen on data no score is read on). Per
    sample: ``x_dist = ||X - X_prev|| / ||X||`` of the nearest previous
    input and ``h_dist = ||H*_prev - H*|| / ||H*||``; a warm start helps the
    solve where ``h_dist < 1`` (the zero start is at distance 1).

    Returns:
        dict: per threshold, the share of samples matched and, of those, the
        share with ``h_dist < 1`` and the median ``h_dist``; and
        ``suggested_match_thr``, the largest threshold at which at least
        :data:`SUGGEST_SHARE` of the matched samples start nearer their
        fixed point than from zero.
    """
    opts = dict(options or {})
    if split == 'train':
        opts.update({'test_dataloader.dataset.ann_file': 'annotations/youtube_vis_train.json',
                     'test_dataloader.dataset.data_prefix.img_path': 'train/JPEGImages'})
    model, cfg = build_detector(config, opts, checkpoint)
    model.set_warm_start(dict(enabled=True, budget=None, match_thr=float('inf')))
    memory = model.warm_start_memory
    pairs: List[Tuple[Tensor, Tensor]] = []
    # The previous (X, H*) of each call of a frame, by (refiner, call index),
    # as the memory keeps them.
    last: Dict[Tuple[int, int], Tuple[Tensor, Tensor]] = {}
    calls: Dict[int, int] = {}
    state = {}
    new_frame, guess, remember = memory.new_frame, memory.initial_guess, memory.remember

    def spy_new_frame(video_ids, frame_ids):
        calls.clear()
        return new_frame(video_ids, frame_ids)

    def spy_guess(refiner, x):
        h0, matched = guess(refiner, x)
        index = calls.get(id(refiner), 0)
        calls[id(refiner)] = index + 1
        # With an infinite threshold every sample matches where the memory
        # has a previous call of this size: none means a new video.
        state.update(key=(id(refiner), index), warm=bool(matched.any()))
        return h0, matched

    def spy_remember(x, h):
        key = state['key']
        if state['warm'] and len(x):
            x_prev, h_prev = last[key]
            flat = x.flatten(1)
            dist, nearest = torch.cdist(flat, x_prev.flatten(1)).min(dim=1)
            h_dist = (h_prev[nearest] - h).flatten(1).norm(dim=1) / h.flatten(1).norm(
                dim=1).clamp_min(1e-12)
            pairs.append((dist / flat.norm(dim=1).clamp_min(1e-12), h_dist))
        if len(x):
            last[key] = (x, h)
        remember(x, h)

    memory.new_frame, memory.initial_guess, memory.remember = (spy_new_frame, spy_guess,
                                                               spy_remember)
    with torch.no_grad():
        for batch in build_loader(cfg, num_videos):
            _run_clip(model, batch)
    x_dist = torch.cat([x for x, _ in pairs])
    h_dist = torch.cat([h for _, h in pairs])
    rows = []
    for thr in thresholds:
        keep = x_dist <= thr
        rows.append(dict(
            match_thr=thr, matched=keep.float().mean().item(),
            helps=(h_dist[keep] < 1).float().mean().item() if keep.any() else None,
            median_h_dist=h_dist[keep].median().item() if keep.any() else None))
    good = [r['match_thr'] for r in rows if r['helps'] is not None and r['helps'] >= SUGGEST_SHARE]
    return dict(split=split, samples=len(x_dist), suggested_match_thr=max(good, default=None),
                x_dist_quantiles={str(q): torch.quantile(x_dist, q).item()
                                  for q in (0.1, 0.25, 0.5, 0.75, 0.9)},
                thresholds=rows)


def _options(report: Dict) -> str:
    options = report.get('options')
    return (' (' + ', '.join(f'`{k}={v}`' for k, v in options.items()) + ')') if options else ''


def warm_start_markdown(report: Dict, machine: Dict) -> str:
    """The report as a Markdown table."""
    lines = [
        '# Video IFR warm start: each frame\'s solves from the previous frame\'s equilibria', '',
        f"Model: `{report['config']}` against `{report['stock_config']}`, "
        f"{report['videos']} clips of its test set{_options(report)}, one thread "
        f"({machine.get('cpu')}). Settings interleaved "
        'clip by clip; ratios from this run. Steps: block evaluations per solved sample (a mask '
        'RoI, or a tower on a pyramid level), over every frame (frame 0 always solves cold). '
        f"Warm settings match at `match_thr={report['match_thr']}`.", '',
        '| setting | steps / sample | vs cold | ms / frame | vs stock | vs cold | '
        'VIS AP | AP50 | AP75 | AR1 | AR10 | AP - cold |',
        '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |'
    ]

    def num(value, digits):
        return '-' if value is None else f'{value:.{digits}f}'

    for name in report['settings']:
        row = report[name]
        ap = row['vis_ap']
        lines.append(
            f"| {name} | {num(row['steps_per_frame'], 2)} | {num(row.get('steps_vs_cold'), 2)}x | "
            f"{row['ms_per_frame']:.0f} | {row['ms_vs_stock']:.2f}x | {row['ms_vs_cold']:.2f}x | "
            f"{ap['AP']:.1f} | {ap['AP50']:.1f} | {ap['AP75']:.1f} | {ap['AR1']:.1f} | "
            f"{ap['AR10']:.1f} | {num(row.get('vis_ap_vs_cold'), 1)} |")
    calibration = report.get('match_calibration')
    if calibration:
        lines += [
            '', f"Match distances on the {calibration['split']} clips ({calibration['samples']} "
            'solved samples, each frame from the nearest previous input): '
            '`x_dist = ||X - X_prev|| / ||X||`, `h_dist = ||H*_prev - H*|| / ||H*||` (the zero '
            'start is at 1). Suggested '
            f"`match_thr`: {calibration['suggested_match_thr']} (the largest at which "
            f'{100 * SUGGEST_SHARE:.0f} % of the matched samples start nearer than from zero).', '',
            '| match_thr | matched | of those, nearer than zero | median h_dist |',
            '| --- | --- | --- | --- |'
        ]
        for row in calibration['thresholds']:
            lines.append(f"| {row['match_thr']} | {100 * row['matched']:.0f} % | "
                         f"{num(None if row['helps'] is None else 100 * row['helps'], 1)} % | "
                         f"{num(row['median_h_dist'], 2)} |")
    return '\n'.join(lines) + '\n'
