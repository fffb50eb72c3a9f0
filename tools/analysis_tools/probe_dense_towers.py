"""Probe the towers of a dense detection head (stock or IFR): the scale of
what each tower hands its predictor, at init or trained.

On the first ``--num-images`` test images (eval mode), prints and writes
(``--out``, JSON) the rms of each tower's output (the last stacked conv of
``cls_convs`` / ``reg_convs``, or the IFR refiner in their place; averaged
over images and FPN levels) and the std of the weights of every conv in the
towers. A tower whose output is far below unit scale hands its predictor
almost nothing to read: with mmdet's N(0, 0.01) init, RetinaNet's
unnormalised 128-channel towers start at rms ~0.001 (docs/model_zoo_demo.md).

Without a checkpoint the model's initial weights are probed (``--seed``).
Example::

    python tools/analysis_tools/probe_dense_towers.py \\
        configs/ifr/demo/retinanet_mbv2_fpn_shapes_baseline.py --out work_dirs/probe/retina.json
"""
import argparse
import os.path as osp
import sys
from typing import Dict

import torch
from mmengine.config import DictAction
from mmengine.runner import set_random_seed

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmifr.models.layers import IFRRefiner  # noqa: E402
from tools.lib.models import build_detector, build_loader  # noqa: E402
from tools.lib.outputs import write_json  # noqa: E402
from tools.lib.progress import quiet_mmengine  # noqa: E402

TOWERS = ('cls_convs', 'reg_convs')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', help='weights (default: the initial ones)')
    parser.add_argument('--num-images', type=int, default=8)
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the initial weights (without a checkpoint)')
    parser.add_argument('--out', help='JSON file for the results')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='overrides of the config, as tools/train.py takes them')
    return parser.parse_args(argv)


def tower_outputs(head: torch.nn.Module) -> Dict[str, torch.nn.Module]:
    """The module whose output each tower hands on: its last stacked conv,
    or the IFR refiner that replaces the tower."""
    out = {}
    for name in TOWERS:
        tower = getattr(head, name, None)
        if isinstance(tower, IFRRefiner):
            out[name] = tower
        elif isinstance(tower, torch.nn.ModuleList) and len(tower):
            out[name] = tower[-1]
    if not out:
        raise ValueError(f'{type(head).__name__} has no {" or ".join(TOWERS)} to probe')
    return out


def probe(model: torch.nn.Module, loader) -> dict:
    """rms of each tower's output over the loader's images and FPN levels,
    and the std of each tower conv's weights."""
    head = model.bbox_head
    outputs = tower_outputs(head)
    sums: Dict[str, list] = {name: [] for name in outputs}
    handles = [
        module.register_forward_hook(
            lambda m, i, o, name=name: sums[name].append(o.detach().pow(2).mean().item()))
        for name, module in outputs.items()
    ]
    try:
        with torch.no_grad():
            for data in loader:
                data = model.data_preprocessor(data, False)
                head(model.extract_feat(data['inputs']))
    finally:
        for handle in handles:
            handle.remove()
    weights = {
        f'{name}.{n}': m.weight.std().item()
        for name in TOWERS if isinstance(getattr(head, name, None), torch.nn.Module)
        for n, m in getattr(head, name).named_modules() if isinstance(m, torch.nn.Conv2d)
    }
    return dict(
        head=type(head).__name__,
        tower_output_rms={k: (sum(v) / len(v))**0.5 for k, v in sums.items() if v},
        conv_weight_std=weights)


def main(argv=None) -> dict:
    args = parse_args(argv)
    quiet_mmengine()
    set_random_seed(args.seed)
    model, cfg = build_detector(args.config, args.cfg_options, args.checkpoint)
    result = dict(config=args.config, checkpoint=args.checkpoint,
                  seed=None if args.checkpoint else args.seed, num_images=args.num_images,
                  **probe(model, build_loader(cfg, args.num_images)))
    for name, rms in result['tower_output_rms'].items():
        print(f'{name}: output rms {rms:.4f}')
    if args.out:
        write_json(args.out, result)
    return result


if __name__ == '__main__':
    main()
