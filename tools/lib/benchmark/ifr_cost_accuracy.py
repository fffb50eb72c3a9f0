"""The ``accuracy`` section of the IFR cost benchmark: paper Table 7 redone.

Mask AP of a trained IFR model on its test set for each inference solve,
with the time per image each one costs. The backbone, RPN and box head run
once per image (the mask branch does not change them); the mask branch then
runs once per setting, through the refiners' ``test_overrides``, each into
its own ``CocoMetric``.

The functions take the ``argparse`` namespace of
``tools/analysis_tools/benchmark_ifr_cost.py``.
"""
import copy
import json
import time
from argparse import Namespace
from typing import Dict, List, Tuple

import torch
from mmengine.evaluator import Evaluator

from mmdet.structures import DetDataSample
from mmifr.engine.hooks import find_refiners
from ..models import build_detector, build_loader
from ..progress import log
from .solves import refiner_defaults
from .timing import MaskHeadTimer


def accuracy_settings(args: Namespace) -> List[Tuple[str, dict]]:
    """The inference solves to evaluate, as ``(label, test_solver overrides)``.

    For each of ``args.outputs``: each of ``args.max_iters`` at tol
    ``1e-3``, then each of ``args.tols`` at ``max_iter=15`` (``1e-3``
    skipped: the ``max_iter=15`` row already has it). Then the
    ``--extra-settings`` dicts, and the project's default ``test_solver``
    where there is one.
    """
    settings = []
    for output in args.outputs:
        for it in args.max_iters:
            settings.append((f'max_iter={it}, tol=1e-3, output={output}',
                             dict(max_iter=it, tol=1e-3, output=output)))
        for tol in args.tols:
            if tol == 1e-3:
                continue
            settings.append((f'max_iter=15, tol={tol:g}, output={output}',
                             dict(max_iter=15, tol=tol, output=output)))
    for extra in json.loads(args.extra_settings or '[]'):
        settings.append((', '.join(f'{k}={v}' for k, v in extra.items()), dict(extra)))
    _, test_default = refiner_defaults()
    if test_default:
        settings.append(('project default test_solver ' + json.dumps(test_default),
                         dict(test_default)))
    return settings


def run_accuracy(args: Namespace) -> Dict:
    """Evaluate ``args.config`` / ``args.checkpoint`` under every setting.

    Each setting overrides the training solve, not the config's own
    ``test_solver``. With ``--baseline-config/--baseline-checkpoint`` the
    stock model is evaluated on the same images.

    Returns:
        dict: The report's ``accuracy`` section: the model, the training
        solve, ``shared_s_per_img`` (backbone + RPN + box head) and one row
        per setting (``segm_mAP``, ``bbox_mAP``, solver steps, mask branch
        and total time per image, the AP delta and time ratio against the
        ``max_iter=15, tol=1e-3, output=z`` row where it is evaluated), plus
        ``baseline`` if given.

    Raises:
        ValueError: If the model has no ``IFRRefiner``.
    """
    model, cfg = build_detector(args.config, {}, args.checkpoint)
    refiners = list(find_refiners(model).values())
    if not refiners:
        raise ValueError(f'{args.config} has no IFRRefiner')
    base_overrides = [dict(r.test_overrides) for r in refiners]
    train_solver = dict(refiners[0].deq.options)
    settings = accuracy_settings(args)
    loader = build_loader(cfg, args.num_eval_images)
    dataset = loader.dataset
    metainfo = (dataset.dataset if hasattr(dataset, 'dataset') else dataset).metainfo

    def evaluator():
        ev = Evaluator(copy.deepcopy(cfg.test_evaluator))
        ev.dataset_meta = metainfo
        return ev

    evaluators = {name: evaluator() for name, _ in settings}
    times = {name: [] for name, _ in settings}
    steps = {name: [] for name, _ in settings}
    shared_times = []
    baseline = None
    if args.baseline_config and args.baseline_checkpoint:
        bmodel = build_detector(args.baseline_config, {}, args.baseline_checkpoint)[0]
        baseline = dict(model=bmodel, evaluator=evaluator(), times=[], mask_times=[],
                        timer=MaskHeadTimer(bmodel.roi_head.mask_head))
    log(f'[accuracy] {len(settings)} solver settings on {len(loader)} images')
    with torch.no_grad():
        for i, batch in enumerate(loader):
            data = model.data_preprocessor(batch, False)
            samples = data['data_samples']
            start = time.perf_counter()
            x = model.extract_feat(data['inputs'])
            rpn = model.rpn_head.predict(x, samples, rescale=False)
            metas = [s.metainfo for s in samples]
            dets = model.roi_head.predict_bbox(
                x, metas, rpn, rcnn_test_cfg=model.roi_head.test_cfg, rescale=False)
            shared_times.append(time.perf_counter() - start)
            for name, overrides in settings:
                for r in refiners:
                    # Relative to the training solve, not to the config's
                    # own test_solver.
                    r.test_overrides = dict(overrides)
                    r.pop_stats()
                results = copy.deepcopy(dets)
                start = time.perf_counter()
                results = model.roi_head.predict_mask(x, metas, results, rescale=True)
                times[name].append(time.perf_counter() - start)
                for r in refiners:
                    steps[name] += [s.forward.nstep for s in r.pop_stats()]
                out = model.add_pred_to_datasample(
                    [DetDataSample(metainfo=s.metainfo) for s in samples], results)
                evaluators[name].process(data_samples=out, data_batch=batch)
            if baseline is not None:
                bmodel, timer = baseline['model'], baseline['timer']
                timer.total = 0.0
                start = time.perf_counter()
                out = bmodel(**bmodel.data_preprocessor(batch, False), mode='predict')
                baseline['times'].append(time.perf_counter() - start)
                baseline['mask_times'].append(timer.total)
                baseline['evaluator'].process(data_samples=out, data_batch=batch)
            if (i + 1) % 10 == 0:
                log(f'[accuracy] {i + 1}/{len(loader)} images')
    for r, base in zip(refiners, base_overrides):
        r.test_overrides = base
    n = len(shared_times)
    shared = sum(shared_times) / n
    rows = []
    for name, overrides in settings:
        metrics = evaluators[name].evaluate(n)
        nstep = torch.cat(steps[name]).float() if steps[name] else torch.zeros(1)
        mask_s = sum(times[name]) / n
        rows.append(dict(
            setting=name,
            test_solver=overrides,
            segm_mAP=metrics.get('coco/segm_mAP'),
            segm_mAP_50=metrics.get('coco/segm_mAP_50'),
            bbox_mAP=metrics.get('coco/bbox_mAP'),
            solver_steps_mean=nstep.mean().item(),
            solver_steps_max=nstep.max().item(),
            mask_branch_s_per_img=mask_s,
            total_s_per_img=shared + mask_s))
    out = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        training_solver={k: train_solver[k] for k in ('solver', 'max_iter', 'tol')},
        images=n,
        shared_s_per_img=shared,
        note='backbone + RPN + box head run once per image (shared_s_per_img); '
        'the mask branch (RoI extraction, mask head, mask paste) once per setting',
        rows=rows)
    reference = next((r for r in rows if r['test_solver'] == dict(max_iter=15, tol=1e-3,
                                                                  output='z')), None)
    if reference is not None:
        out['reference'] = reference['setting']
        for r in rows:
            if r['segm_mAP'] is not None and reference['segm_mAP'] is not None:
                r['segm_mAP_delta'] = r['segm_mAP'] - reference['segm_mAP']
            r['mask_branch_ratio_vs_reference'] = (
                r['mask_branch_s_per_img'] / reference['mask_branch_s_per_img'])
    if baseline is not None:
        metrics = baseline['evaluator'].evaluate(n)
        out['baseline'] = dict(
            config=args.baseline_config,
            checkpoint=args.baseline_checkpoint,
            segm_mAP=metrics.get('coco/segm_mAP'),
            bbox_mAP=metrics.get('coco/bbox_mAP'),
            total_s_per_img=sum(baseline['times']) / n,
            mask_head_s_per_img=sum(baseline['mask_times']) / n)
    return out
