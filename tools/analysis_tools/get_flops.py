# Copyright (c) mmifr contributors. All rights reserved.
"""FLOPs of a model's IFR refiners per solver step, against the stock tower.

An IFR refiner costs one evaluation of its block per solver step, so its FLOPs
are ``steps x block``; mmdet's ``get_flops.py`` traces one forward and cannot
say how many steps a solve takes. This tool counts one block evaluation (and
the input projection, if any) with mmengine's ``FlopAnalyzer`` for every
refiner of a config's model, the FLOPs of the stacked 3x3 convs it replaces,
and the number of steps at which the two are equal. Counts are fvcore's: one
multiply-add is one FLOP; norms and activations are counted, additions not.

Examples::

    # the RoI mask head (14x14 RoIs): 0.232 GFLOPs a step, parity at 2.0 steps
    python tools/analysis_tools/get_flops.py configs/ifr/mask_rcnn_r50_ifr_1x.py
    # a dense head, per image at one FPN level (e.g. P3 of an 800x1333 image)
    python tools/analysis_tools/get_flops.py configs/ifr/retinanet_r50_ifr_1x.py \
        --input-size 100 167 --steps 5 10
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, List, Sequence

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from torch import nn

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
import mmifr  # noqa: E402,F401  (registers the IFR modules)
from mmdet.registry import MODELS  # noqa: E402
from mmifr.engine.hooks import find_refiners  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='config of a model with IFR refiners')
    parser.add_argument('--input-size', type=int, nargs=2, default=[14, 14], metavar=('H', 'W'),
                        help='spatial size of the refined feature (RoI size, or an FPN level)')
    parser.add_argument('--stock-convs', type=int, default=4,
                        help='3x3 convs of the stock tower each refiner replaces')
    parser.add_argument('--steps', type=float, nargs='*', default=[],
                        help='solver steps to report the FLOPs at (e.g. the logged ifr/fwd_nstep)')
    parser.add_argument('--out', help='also write the rows as JSON here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args()


def _flops(module: nn.Module, inputs: tuple) -> int:
    analyzer = FlopAnalyzer(module, inputs)
    # Silences the per-operator warnings (additions, weight norm) of each trace.
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return int(analyzer.total())


def refiner_flops(model: nn.Module, size: Sequence[int], stock_convs: int,
                  steps: Sequence[float] = ()) -> List[Dict]:
    """One row per refiner of ``model``.

    Args:
        model (nn.Module): a model with :class:`~mmifr.models.layers.IFRRefiner` s.
        size (Sequence[int]): ``(H, W)`` of the feature a refiner refines.
        stock_convs (int): 3x3 convs of the stock tower.
        steps (Sequence[float]): solver steps to report the total FLOPs at.

    Returns:
        list[dict]: ``refiner``, ``input`` ``(C, H, W)``, ``block`` (FLOPs of
        one step), ``inject`` (of the input projection, once per solve),
        ``stock_tower``, ``parity_steps`` and ``at_steps`` ``{steps: FLOPs}``.
    """
    rows = []
    for name, refiner in find_refiners(model).items():
        h, w = size
        x = torch.zeros(1, refiner.in_channels, h, w)
        inject = _flops(refiner.inject, (x, )) if refiner.inject is not None else 0
        z = torch.zeros(1, refiner.channels, h, w)
        block = refiner.blocks[0] if refiner.mode == 'explicit' else refiner.block
        per_step = _flops(block, (z, z))
        conv = nn.Conv2d(refiner.in_channels, refiner.channels, 3, padding=1)
        later = nn.Conv2d(refiner.channels, refiner.channels, 3, padding=1)
        stock = _flops(conv, (x, )) + (stock_convs - 1) * _flops(later, (z, ))
        rows.append(
            dict(
                refiner=name,
                input=[refiner.in_channels, h, w],
                block=per_step,
                inject=inject,
                stock_tower=stock,
                parity_steps=(stock - inject) / per_step,
                at_steps={str(s): inject + s * per_step for s in steps}))
    if not rows:
        raise ValueError('the model has no IFRRefiner: use an IFR config (configs/ifr/...)')
    return rows


def markdown(rows: List[Dict], steps: Sequence[float]) -> str:
    header = ['refiner', 'input (C, H, W)', 'GFLOPs / step', 'stock tower GFLOPs',
              'steps at parity'] + [f'GFLOPs at {s:g} steps' for s in steps]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(header)]
    for r in rows:
        cells = [r['refiner'], str(tuple(r['input'])), f"{r['block'] / 1e9:.3f}",
                 f"{r['stock_tower'] / 1e9:.3f}", f"{r['parity_steps']:.2f}"]
        cells += [f"{r['at_steps'][str(s)] / 1e9:.3f}" for s in steps]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def main():
    args = parse_args()
    MMLogger.get_instance('mmengine', log_level='ERROR')
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model).eval()
    rows = refiner_flops(model, args.input_size, args.stock_convs, args.steps)
    print(markdown(rows, args.steps), end='')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(rows, f, indent=2)


if __name__ == '__main__':
    main()
