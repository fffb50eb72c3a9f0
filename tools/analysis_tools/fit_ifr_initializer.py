# Copyright (c) mmifr contributors. All rights reserved.
"""Fit a learned initial guess to a trained IFR mask head and count the steps it saves.

A :class:`~mmifr.models.layers.FixedPointInitializer` is trained beside the
model when ``ifr_cfg.initializer`` is set; this tool answers, without a new
training run, what one would buy on a model trained without it. It extracts
the mask RoI features of ground-truth boxes of ``--train-images`` training
images through the checkpoint, solves each to ``H*`` (tol 1e-4), fits the
initializer to regress ``H*`` (the loss the model would train it with), and
then solves the RoIs of ``--val-images`` test images from ``H0 = 0`` and from
the guess, under the model's inference solve and under its training solve.
The fixed point is the same either way; what changes is the number of steps.

Example::

    python tools/analysis_tools/fit_ifr_initializer.py \\
        configs/ifr/demo/mask-rcnn_mbv2_fpn_shapes_ifr.py \\
        work_dirs/seed_study/mask_rcnn_mbv2_shapes/ifr/seed0/iter_450.pth \\
        --out work_dirs/benchmarks/initializer_fit.json
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, Optional

import torch
from torch import Tensor

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmifr.models.layers import FixedPointInitializer, IFRRefiner  # noqa: E402
from tools.lib.models import build_detector, build_loader, config_dataset  # noqa: E402
from tools.lib.outputs import write_json  # noqa: E402
from tools.lib.progress import log, quiet_mmengine  # noqa: E402
from tools.lib.roi_features import gt_roi_features  # noqa: E402

#: Tolerance of the solves that give the regression targets ``H*``.
TARGET_SOLVE = dict(tol=1e-4, max_iter=30)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='IFR Mask R-CNN config')
    parser.add_argument('checkpoint', help='its trained checkpoint')
    parser.add_argument('--train-images', type=int, default=40)
    parser.add_argument('--val-images', type=int, default=20)
    parser.add_argument('--iters', type=int, default=300, help='Adam steps of the fit')
    parser.add_argument('--lr', type=float, default=3e-3)
    parser.add_argument('--batch', type=int, default=32, help='RoIs per fit step')
    parser.add_argument('--mid-channels', type=int, default=64)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', help='write the result as JSON here')
    return parser.parse_args(argv)


def solve(refiner: IFRRefiner, x: Tensor, h0: Optional[Tensor] = None,
          **overrides) -> Dict[str, object]:
    """Solve ``refiner``'s fixed point of ``x`` (``(N, C, S, S)``) in eval mode.

    Returns:
        dict: ``h`` (the fixed point) and ``steps`` (mean per RoI).
    """
    with torch.no_grad():
        h = refiner.deq(refiner.block, x, h0=h0, **overrides)
    return dict(h=h, steps=refiner.deq.last_stats.forward.nstep.float().mean().item())


def fit(initializer: FixedPointInitializer, x: Tensor, h_star: Tensor, iters: int, lr: float,
        batch: int, seed: int = 0) -> float:
    """Fit ``initializer`` to map ``x`` to ``h_star`` (both ``(N, C, S, S)``)
    with Adam on random batches; returns the last batch's loss."""
    gen = torch.Generator().manual_seed(seed)
    optim = torch.optim.Adam(initializer.parameters(), lr=lr)
    loss = torch.zeros(())
    for _ in range(iters):
        idx = torch.randint(0, x.shape[0], (min(batch, x.shape[0]), ), generator=gen)
        loss = initializer.loss(initializer(x[idx]), h_star[idx])
        optim.zero_grad()
        loss.backward()
        optim.step()
    return loss.item()


def compare_starts(refiner: IFRRefiner, initializer: FixedPointInitializer,
                   x: Tensor) -> Dict[str, dict]:
    """Steps from ``H0 = 0`` and from the initializer's guess, under the
    refiner's inference solve and its training solve."""
    with torch.no_grad():
        guess = initializer(x)
    out = {}
    for name, overrides in (('inference', refiner._eval_overrides()), ('training', {})):
        cold, warm = solve(refiner, x, **overrides), solve(refiner, x, guess, **overrides)
        out[name] = dict(
            solve=overrides or 'training solve',
            steps_zero_start=cold['steps'],
            steps_learned_start=warm['steps'],
            fixed_point_rel_diff=((warm['h'] - cold['h']).norm() / cold['h'].norm()).item())
    return out


def main(argv=None) -> None:
    args = parse_args(argv)
    quiet_mmengine()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model, cfg = build_detector(args.config, {}, args.checkpoint)
    model.eval()
    refiner = model.roi_head.mask_head.convs[0]
    if not isinstance(refiner, IFRRefiner):
        raise ValueError(f'{args.config}: its mask head has no IFRRefiner (found '
                         f'{type(refiner).__name__}); use an IFR Mask R-CNN config')
    x_train, x_val = (
        gt_roi_features(model, build_loader(cfg, num, config_dataset(cfg, train)))[0]
        for train, num in ((True, args.train_images), (False, args.val_images)))
    log(f'{x_train.shape[0]} training RoIs, {x_val.shape[0]} test RoIs')
    h_train = solve(refiner, x_train, **TARGET_SOLVE)['h']
    initializer = FixedPointInitializer(refiner.channels, args.mid_channels)
    initializer.init_weights()
    loss = fit(initializer, x_train, h_train, args.iters, args.lr, args.batch, args.seed)
    h_val = solve(refiner, x_val, **TARGET_SOLVE)['h']
    with torch.no_grad():
        guess_err = ((initializer(x_val) - h_val).norm() / h_val.norm()).item()
        one_step_err = ((refiner.block(torch.zeros_like(x_val), x_val) - h_val).norm() /
                        h_val.norm()).item()
    result = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        train_rois=x_train.shape[0],
        val_rois=x_val.shape[0],
        fit=dict(iters=args.iters, lr=args.lr, batch=args.batch, last_loss=loss,
                 mid_channels=args.mid_channels,
                 params=sum(p.numel() for p in initializer.parameters())),
        val_guess_rel_err=guess_err,
        val_one_block_step_rel_err=one_step_err,
        **compare_starts(refiner, initializer, x_val))
    print(json.dumps(result, indent=2))
    if args.out:
        write_json(args.out, result)
        log(f'written {args.out}')


if __name__ == '__main__':
    main()
