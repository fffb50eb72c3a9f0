"""The ``e2e`` section of the IFR cost benchmark: whole Mask R-CNNs.

A stock model and its IFR counterpart, sharing every weight outside the
mask head (hence the same proposals and detections): inference latency per
image (whole ``predict`` and the mask head's part of it), training-step time,
positive RoIs per step and solver steps; on a CUDA device (``--device``)
timed with CUDA events, plus the training step's peak of allocated memory.

The functions take the ``argparse`` namespace of
``tools/analysis_tools/benchmark_ifr_cost.py``.
"""
import copy
import json
import os.path as osp
import statistics
import tempfile
from argparse import Namespace
from contextlib import contextmanager
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.runner.checkpoint import _load_checkpoint
from torch import nn

from mmifr.engine.hooks import find_refiners
from ..memory import MIB, cuda_peak_during
from ..models import (NO_PRETRAINED_BACKBONE, build_detector, build_loader, config_dataset,
                      fruits_dataset, resolve_path, shapes_dataset)
from ..progress import log
from ..shapes_data import CLASSES, make_dataset
from .solves import solver_steps
from .timing import MaskHeadTimer, add_ratios, median_time

#: The built-in model pairs (``--e2e-models``): configs and data (``fruits``:
#: the fruits & nuts photos; ``config``: the configs' own datasets).
E2E_MODELS = {
    'r50': dict(
        baseline='mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
        ifr='configs/ifr/mask_rcnn_r50_ifr_1x.py',
        data='fruits'),
    'mbv2': dict(
        baseline='configs/ifr/demo/mask-rcnn_mbv2_fpn_shapes_baseline.py',
        ifr='configs/ifr/demo/mask-rcnn_mbv2_fpn_shapes_ifr.py',
        data='config'),
}
#: Where the CPU demo (``tools/run_demo.py``) trains the ``mbv2`` pair.
DEMO_DIR = 'work_dirs/demo/mask_rcnn_mbv2_shapes'
#: ``--e2e-data shapes``: images generated at 800x1333 (COCO's test size) unless
#: ``--e2e-size`` says otherwise; enough for the timed images and one batch.
SHAPES_SIZE = (1333, 800)


def generated_shapes(args: Namespace) -> Tuple[str, Tuple[str, ...]]:
    """``--e2e-data shapes``: the generated dataset's folder and class names.

    Made once per run (in ``--shapes-root``, or a temporary folder) by
    :mod:`tools.lib.shapes_data`.
    """
    root = getattr(args, '_shapes_root', None)
    if root is None:
        root = args.shapes_root or tempfile.mkdtemp(prefix='ifr_cost_shapes_')
        if not osp.exists(osp.join(root, 'annotations', 'instances_val.json')):
            size = tuple(args.e2e_size or SHAPES_SIZE)
            log(f'[e2e] generating shapes images of {size[0]}x{size[1]} in {root}')
            make_dataset(root, num_train=max(args.e2e_train_batch, 2),
                         num_val=args.e2e_images, size=size, seed=args.seed)
        args._shapes_root = root
    return root, CLASSES


def e2e_datasets(spec: dict, cfg, args: Namespace) -> Tuple[dict, dict, str]:
    """The training and test dataset configs of a model pair, and their description."""
    if args.e2e_data == 'shapes':
        root, classes = generated_shapes(args)
        scale = tuple(args.e2e_size) if args.e2e_size else None
        what = f'generated shapes images ({root}), resized to ' + (
            f'{scale[0]}x{scale[1]}' if scale else 'the config\'s scale')
        return (shapes_dataset(cfg, root, True, classes, scale),
                shapes_dataset(cfg, root, False, classes, scale), what)
    if spec['data'] == 'fruits':
        return (fruits_dataset(cfg, args.fruits_root, True),
                fruits_dataset(cfg, args.fruits_root, False), 'fruits_nuts ' + args.fruits_root)
    return config_dataset(cfg, True), config_dataset(cfg, False), 'config (data/shapes)'


def mbv2_checkpoints(args: Namespace) -> Optional[Tuple[str, str]]:
    """The trained ``(baseline, ifr)`` checkpoints of the ``mbv2`` pair.

    ``--mbv2-checkpoints`` if given, else the demo run's last checkpoints
    (under the current directory, else under the tools' root, see
    :func:`~tools.lib.models.resolve_path`); ``None`` if the demo has not
    trained both.
    """
    if args.mbv2_checkpoints:
        return tuple(args.mbv2_checkpoints)
    found = []
    for side in ('baseline', 'ifr'):
        marker = resolve_path(osp.join(DEMO_DIR, side, 'last_checkpoint'))
        if not osp.exists(marker):
            return None
        with open(marker) as f:
            found.append(f.read().strip())
    return tuple(found)


def load_refiner_weights(model: nn.Module, checkpoint: str) -> None:
    """Load the mask-head refiners' weights of a trained IFR ``checkpoint``.

    A randomly initialised refiner hardly contracts, so its solves run to
    ``max_iter``; a trained block's step counts are what a user pays.

    Raises:
        ValueError: If the checkpoint has no weights for those refiners.
    """
    state = _load_checkpoint(checkpoint, map_location='cpu')
    state = state.get('state_dict', state)
    names = [f'roi_head.mask_head.{n}.' for n in find_refiners(model.roi_head.mask_head)]
    weights = {k: v for k, v in state.items() if k.startswith(tuple(names))}
    if not weights:
        raise ValueError(f'{checkpoint} has no weights under {names}')
    result = model.load_state_dict(weights, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys


def run_e2e_model(name: str, args: Namespace, spec: Optional[dict] = None) -> Dict:
    """Measure one model pair: its ``stock`` and ``ifr`` rows and the extra IFR rows.

    Extra rows come from ``--e2e-test-solvers`` (inference only),
    ``--e2e-train-solvers`` (training only) and ``--e2e-unroll-row``. Each
    row gets a warm-up run, then the rows are timed in turn,
    ``args.repeats`` times.

    Args:
        name: A key of :data:`E2E_MODELS`, or the label of ``spec``.
        args: The tool's arguments.
        spec: ``dict(baseline=..., ifr=..., data='fruits' | 'config')``
            instead of ``E2E_MODELS[name]``.

    Returns:
        dict: ``weights``, ``data``, ``forced_detections``,
        ``ifr_test_solver`` (the IFR config's own) and per-row results under
        ``rows`` (``infer_s_per_img``, ``mask_head_s_per_img``,
        ``train_step_s``, their ratios to ``stock``, detections per image,
        positive RoIs, solver steps).
    """
    spec = spec or E2E_MODELS[name]
    if name == 'mbv2' and getattr(args, 'e2e_ifr_config', None):
        spec = dict(spec, ifr=args.e2e_ifr_config)
    ckpts = mbv2_checkpoints(args) if name == 'mbv2' else None
    options = {} if not args.e2e_dets else {
        'model.test_cfg.rcnn.score_thr': 0.0,
        'model.test_cfg.rcnn.max_per_img': args.e2e_dets,
        # Enough proposals for the forced detections.
        'model.test_cfg.rpn.max_per_img': max(args.e2e_dets, 100),
    }
    options.update(NO_PRETRAINED_BACKBONE)
    sides = {}
    for side in ('baseline', 'ifr'):
        torch.manual_seed(args.seed)
        sides[side] = build_detector(spec[side], options, ckpts[side == 'ifr'] if ckpts else None)
    stock, cfg = sides['baseline']
    ifr, _ = sides['ifr']
    if not ckpts:
        # Same weights outside the mask head: same proposals, detections, RoIs.
        shared = {k: v for k, v in stock.state_dict().items()
                  if not k.startswith('roi_head.mask_head.')}
        missing = ifr.load_state_dict(shared, strict=False)
        assert not missing.unexpected_keys, missing.unexpected_keys
        if args.e2e_refiner_from:
            load_refiner_weights(ifr, args.e2e_refiner_from)
    refiners = list(find_refiners(ifr).values())
    config_overrides = [r.test_solver for r in refiners]
    # key: (model, test_solver overrides (None: the config's), unroll steps,
    # measure inference, measure training, training solver overrides)
    rows = {
        'stock': (stock, None, None, True, True, None),
        'ifr': (ifr, None, None, True, True, None),
    }
    for label, overrides in json.loads(args.e2e_test_solvers or '{}').items():
        rows[f'ifr, test_solver={label}'] = (ifr, overrides, None, True, False, None)
    for label, overrides in json.loads(args.e2e_train_solvers or '{}').items():
        rows[f'ifr, training solve={label}'] = (ifr, None, None, False, True, overrides)
    if args.e2e_unroll_row:
        rows['ifr, unrolled warm-up phase (4 steps)'] = (ifr, None, 4, False, True, None)
    data_train, data_test, data_label = e2e_datasets(spec, cfg, args)
    test_batches = list(build_loader(cfg, args.e2e_images, data_test))
    train_batch = next(iter(build_loader(cfg, args.e2e_train_batch, data_train,
                                         batch_size=args.e2e_train_batch)))
    device = torch.device(args.device)
    stock.to(device)
    ifr.to(device)
    timers = {id(m): MaskHeadTimer(m.roi_head.mask_head, device) for m in (stock, ifr)}
    log(f'[e2e:{name}] {"trained demo checkpoints" if ckpts else "random init"}, '
        f'{len(test_batches)} test images, train batch of {args.e2e_train_batch}')

    @contextmanager
    def row_state(key):
        model, overrides, unroll, _, _, train_overrides = rows[key]
        solves = [r.deq.options for r in refiners]
        if model is ifr:
            for r, base in zip(refiners, config_overrides):
                r.set_test_solver(base if overrides is None else overrides)
                r.set_unroll_warmup(unroll)
                r.deq.options = {**r.deq.options, **(train_overrides or {})}
        try:
            yield model
        finally:
            for r, base, solve in zip(refiners, config_overrides, solves):
                r.set_test_solver(base)
                r.set_unroll_warmup(None)
                r.deq.options = solve

    def infer(key) -> List[int]:
        dets = []
        with row_state(key) as model, torch.no_grad():
            model.eval()
            for batch in test_batches:
                data = model.data_preprocessor(batch, False)
                out = model(**data, mode='predict')
                dets += [len(s.pred_instances) for s in out]
        return dets

    def train(key) -> Dict[str, float]:
        with row_state(key) as model:
            model.train()
            model.zero_grad(set_to_none=True)
            torch.manual_seed(args.seed)  # same RoI sampling on every side
            data = model.data_preprocessor(copy.deepcopy(train_batch), True)
            pos = []
            hook = model.roi_head.mask_head.register_forward_pre_hook(
                lambda mod, inp: pos.append(inp[0].shape[0]))
            losses = model(**data, mode='loss')
            hook.remove()
            loss, _ = model.parse_losses(losses)
            loss.backward()
            model.zero_grad(set_to_none=True)
        return dict(pos_rois=sum(pos))

    results = {}
    for key, (model, overrides, unroll, do_infer, do_train, _) in rows.items():  # warm-up
        res = results[key] = dict(
            config=spec['baseline' if model is stock else 'ifr'],
            checkpoint=(ckpts[model is ifr] if ckpts else None))
        if overrides is not None:
            res['test_solver'] = overrides
        if do_infer:
            res['dets_per_image'] = statistics.mean(infer(key))
            res['infer_solver'] = solver_steps(model)
        if do_train:
            res.update(train(key))
            res['train_solver'] = solver_steps(model)
            if device.type == 'cuda':
                # After the warm-up: cuDNN's workspaces and autotuning are settled.
                _, peak = cuda_peak_during(lambda: train(key), device)
                res['train_peak_mib'] = peak / MIB
                solver_steps(model)
        log(f'[e2e:{name}] warm-up {key}: {res}')
    runs = {k: dict(infer=[], mask=[], train=[]) for k in rows}
    n_img = len(test_batches)
    for rep in range(args.repeats):
        for key, (model, _, _, do_infer, do_train, _) in rows.items():
            timer = timers[id(model)]
            if do_infer:
                timer.total = 0.0
                runs[key]['infer'].append(median_time(lambda: infer(key), 1, device)[0] / n_img)
                runs[key]['mask'].append(timer.total / n_img)
            if do_train:
                runs[key]['train'].append(median_time(lambda: train(key), 1, device)[0])
            solver_steps(model)
            log(f'[e2e:{name}] repeat {rep + 1} {key}: ' + ', '.join(
                f'{k} {v[-1]:.3f}s' for k, v in runs[key].items() if v))
    for key in rows:
        res = results[key]
        for metric, run in (('infer_s_per_img', 'infer'), ('mask_head_s_per_img', 'mask'),
                            ('train_step_s', 'train')):
            if runs[key][run]:
                res[metric] = statistics.median(runs[key][run])
        res['runs'] = runs[key]
        add_ratios(res, results['stock'], dict(infer_s_per_img='infer', train_step_s='train',
                                               train_peak_mib='train_peak'))
    weights = 'trained demo checkpoints' if ckpts else 'random init (shared outside the mask head)'
    if args.e2e_refiner_from and not ckpts:
        weights += f'; IFR refiner weights from {args.e2e_refiner_from}'
    return dict(
        weights=weights,
        device=str(device),
        data=data_label,
        forced_detections=(f'test_cfg.rcnn.score_thr=0, max_per_img={args.e2e_dets}'
                           if args.e2e_dets else "none: the config's own test_cfg"),
        ifr_test_solver=config_overrides[0] if config_overrides else None,
        rows=results)


def run_e2e(args: Namespace) -> Dict:
    """The report's ``e2e`` section: :func:`run_e2e_model` for each
    ``--e2e-models`` pair, plus ``custom`` for ``--e2e-custom``."""
    out = {name: run_e2e_model(name, args) for name in args.e2e_models}
    if args.e2e_custom:
        spec = dict(baseline=args.e2e_custom[0], ifr=args.e2e_custom[1], data='config')
        out['custom'] = run_e2e_model('custom', args, spec)
    return out
