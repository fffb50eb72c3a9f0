"""Count how often each SOLO grid cell's mask channel is a positive over a
training schedule.

SOLO predicts one mask channel per grid cell and trains it only while an
object's centre region covers the cell, so on a small dataset the finest
levels' channels may see almost no positives in a short schedule. On the
config's training images (no random flip), this runs SOLOHead's own target
assignment and scales the per-epoch counts to the schedule
(``--iters`` x ``--batch-size`` images). Prints and writes (``--out``, JSON)
per level: the grid, its channels, the fraction never positive or positive
fewer than 5 times, and the median and mean count. ``--grids`` tries other
grids on the same data. Example::

    python tools/analysis_tools/solo_grid_positives.py \\
        configs/ifr/demo/solo_mbv2_fpn_shapes_baseline.py --out work_dirs/solo_grids.json
"""
import argparse
import os.path as osp
import sys
from typing import List

import numpy as np
import torch
from mmdet.models.dense_heads import DecoupledSOLOHead, SOLOHead, SOLOV2Head
from mmengine.config import DictAction
from mmengine.utils import track_iter_progress

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from tools.lib.models import (NO_PRETRAINED_BACKBONE, build_detector,  # noqa: E402
                              build_loader, config_dataset)
from tools.lib.outputs import write_json  # noqa: E402
from tools.lib.progress import quiet_mmengine  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--grids', type=int, nargs='+',
                        help="grid sizes per level (default: the config's num_grids)")
    parser.add_argument('--iters', type=int, help="schedule (default: the config's max_iters)")
    parser.add_argument('--batch-size', type=int,
                        help="images per iteration (default: the config's)")
    parser.add_argument('--num-images', type=int, help='training images counted (default: all)')
    parser.add_argument('--out', help='JSON file for the results')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='overrides of the config, as tools/train.py takes them')
    return parser.parse_args(argv)


def count_positives(model: torch.nn.Module, loader) -> List[np.ndarray]:
    """Per level, how many of the loader's images make each grid channel a
    positive (SOLOHead's own assignment).

    Returns:
        list[np.ndarray]: One array of shape (S_l * S_l,) per level.
    """
    head = model.mask_head
    counts = [np.zeros(g * g) for g in head.num_grids]
    # In eval mode SOLOHead resizes every level's masks to one size; the
    # targets need the training sizes.
    head.train()
    try:
        with torch.no_grad():
            for data in track_iter_progress((loader, len(loader)), file=sys.stderr):
                data = model.data_preprocessor(data, True)
                mask_preds, _ = head(model.extract_feat(data['inputs']))
                sizes = [m.shape[-2:] for m in mask_preds]
                for sample in data['data_samples']:
                    _, _, pos = head._get_targets_single(sample.gt_instances,
                                                         featmap_sizes=sizes)
                    for level, p in enumerate(pos):
                        counts[level] += p.numpy()
    finally:
        head.eval()
    return counts


def summarise(counts: List[np.ndarray], grids: List[int], epochs: float) -> List[dict]:
    """Per level, the schedule's positives per channel (``epochs`` x the
    per-epoch counts)."""
    rows = []
    for grid, count in zip(grids, counts):
        per_schedule = count * epochs
        rows.append(dict(grid=grid, channels=grid * grid,
                         never=float((per_schedule == 0).mean()),
                         below_5=float((per_schedule < 5).mean()),
                         median=float(np.median(per_schedule)),
                         mean=float(per_schedule.mean())))
    return rows


def main(argv=None) -> dict:
    args = parse_args(argv)
    quiet_mmengine()
    options = {**NO_PRETRAINED_BACKBONE, **args.cfg_options}
    if args.grids:
        options['model.mask_head.num_grids'] = args.grids
    model, cfg = build_detector(args.config, options)
    head = getattr(model, 'mask_head', None)
    # Decoupled SOLO's channels are per row and column, SOLOv2's kernels
    # are predicted: neither has a mask channel per cell.
    if not isinstance(head, SOLOHead) or isinstance(head, (DecoupledSOLOHead, SOLOV2Head)):
        raise ValueError(f'{type(head).__name__} is not a SOLO head with one mask '
                         'channel per grid cell')
    iters = args.iters or cfg.train_cfg.max_iters
    batch_size = args.batch_size or cfg.train_dataloader.batch_size
    loader = build_loader(cfg, args.num_images, config_dataset(cfg, train=True))
    num_images = len(loader.dataset)
    epochs = iters * batch_size / num_images
    grids = list(head.num_grids)
    result = dict(config=args.config, grids=grids, iters=iters, batch_size=batch_size,
                  num_images=num_images, epochs=epochs,
                  levels=summarise(count_positives(model, loader), grids, epochs))
    print(f'{num_images} images, {epochs:.2f} epochs ({iters} iterations x {batch_size})')
    for level in result['levels']:
        print(f"S={level['grid']}: {level['channels']} channels, positives per channel over "
              f"the schedule median {level['median']:.2f}, mean {level['mean']:.2f}; never "
              f"{100 * level['never']:.0f} %, < 5 {100 * level['below_5']:.0f} %")
    if args.out:
        write_json(args.out, result)
    return result


if __name__ == '__main__':
    main()
