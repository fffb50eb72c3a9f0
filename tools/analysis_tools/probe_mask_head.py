"""Probe a Mask R-CNN's mask head on ground-truth boxes (stock or IFR).

Prints and writes (``--out``, JSON):

* per split (``--splits``): BCE and mask IoU of the head's 28x28 masks on the
  ground-truth boxes of the first ``--max-images`` images, i.e. mask quality
  without detection errors; train against val says whether it generalises;
* the response of the tower in front of the predictor (the stock convs, or
  the IFR refiner solved to tol 1e-5) on val RoIs: relative sensitivity to a
  small change of its input and locality (centre change / border change for a
  change of the input at the centre cell); see
  :mod:`tools.lib.mask_head_probe`.

``--init-head`` re-initialises the mask head after loading the checkpoint:
a fresh head on the trained model's RoI features (the start of training as
the features will be). A checkpoint of another head type may be given then.

Example (docs/ifr_vs_stock_head.md, section 5)::

    python tools/analysis_tools/probe_mask_head.py \\
        configs/ifr/demo/mask-rcnn_mbv2_fpn_shapes_ifr.py \\
        work_dirs/seed_study/mask_rcnn_mbv2_shapes/ifr/seed0/iter_450.pth \\
        --out work_dirs/probe/ifr_seed0.json
"""
import argparse
import copy
import os.path as osp
import sys
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmifr.engine.hooks import find_refiners  # noqa: E402
from tools.lib.benchmark.solves import EXACT_SOLVE  # noqa: E402
from tools.lib.mask_head_probe import (gt_box_mask_quality, gt_box_rois,  # noqa: E402
                                       tower_response)
from tools.lib.models import build_detector  # noqa: E402
from tools.lib.outputs import write_json  # noqa: E402
from tools.lib.progress import quiet_mmengine  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', help='omitted: the model at its init')
    parser.add_argument('--init-head', action='store_true',
                        help='re-initialise the mask head after loading the checkpoint')
    parser.add_argument('--splits', nargs='+', default=['train', 'val'], choices=['train', 'val'])
    parser.add_argument('--max-images', type=int, default=50)
    parser.add_argument('--response-rois', type=int, default=32,
                        help='val RoIs the tower response is measured on')
    parser.add_argument('--out', help='write the results as JSON here')
    return parser.parse_args(argv)


def split_loader(cfg: Config, split: str):
    # Deep copies: building a dataset fills in its config's paths in place.
    loader = copy.deepcopy(cfg.val_dataloader)
    if split == 'train':
        train = cfg.train_dataloader.dataset
        loader.dataset.update(
            ann_file=train.ann_file, data_prefix=copy.deepcopy(train.data_prefix))
    return Runner.build_dataloader(loader)


def mask_tower(head):
    """The tower in front of the head's upsampling, with IFR refiners solving
    to :data:`EXACT_SOLVE`."""
    for refiner in find_refiners(head).values():
        refiner.set_test_solver(EXACT_SOLVE)

    def tower(x):
        for layer in head.convs:
            x = layer(x)
        return x

    return tower


def solve_steps(head, rois) -> Optional[float]:
    """Mean Broyden steps per RoI of the head's first IFR refiner to the
    training tolerance, 1e-3 (``None`` for a head without one)."""
    refiners = list(find_refiners(head).values())
    if not refiners:
        return None
    refiner = refiners[0]
    refiner.set_test_solver(dict(tol=1e-3, max_iter=40, output='z'))
    with torch.no_grad():
        refiner(rois)
    return refiner.deq.last_stats.forward.nstep.float().mean().item()


def main(argv=None) -> dict:
    args = parse_args(argv)
    from mmdet.registry import MODELS
    quiet_mmengine()
    torch.manual_seed(0)
    # --init-head replaces the head: a checkpoint of another head type is fine then.
    model, cfg = build_detector(args.config, checkpoint=args.checkpoint,
                                strict=not args.init_head)
    if args.init_head:
        # A new head: mmengine's init_weights() skips modules it has run on.
        model.roi_head.mask_head = MODELS.build(cfg.model.roi_head.mask_head)
        model.roi_head.mask_head.init_weights()
    model.eval()
    head = model.roi_head.mask_head
    result = dict(config=args.config, checkpoint=args.checkpoint, init_head=args.init_head,
                  head=type(head).__name__)
    for split in args.splits:
        result[split] = gt_box_mask_quality(model, split_loader(cfg, split), args.max_images)
        print(f"{split:5s} gt-box mask BCE {result[split]['loss']:.4f}  mask IoU "
              f"{result[split]['mask_iou']:.4f}  ({result[split]['num_rois']} RoIs)", flush=True)
    parts, count = [], 0
    with torch.no_grad():
        # Only as many images as the response needs RoIs.
        for x, _, _ in gt_box_rois(model, split_loader(cfg, 'val'), args.max_images):
            parts.append(x)
            count += len(x)
            if count >= args.response_rois:
                break
    rois = torch.cat(parts)[:args.response_rois]
    result['response'] = tower_response(mask_tower(head), rois)
    r = result['response']
    print(f"tower response on {len(rois)} val RoIs: sensitivity {r['sensitivity']:.3f}  "
          f"locality {r['locality']:.1f}  output rms {r['out_rms']:.2f}")
    steps = solve_steps(head, rois)
    if steps is not None:
        result['response']['steps_to_tol_1e-3'] = steps
        print(f'IFR solve: {steps:.1f} Broyden steps per RoI to tol 1e-3 (at most 40)')
    if args.out:
        write_json(args.out, result)
        print(f'wrote {args.out}')
    return result


if __name__ == '__main__':
    main()
