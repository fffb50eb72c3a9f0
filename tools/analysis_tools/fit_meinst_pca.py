# Copyright (c) mmifr contributors. All rights reserved.
"""Fit MEInst's mask PCA on a COCO-format training set and check it.

Crops every non-crowd instance mask of ``ann_file`` to its box at
``--mask-size`` (as MEInst's mask head crops its targets), fits the
``--dim`` leading principal components (in logit space unless
``--no-sigmoid``; streaming 784x784 covariance, then ``eigh``), saves them
for ``PCAMaskCoder(pca_file=...)`` and prints the mean reconstruction IoU
(``decode(encode(m)) >= 0.5`` against ``m``) on the fitted set and, with
``--val-ann-file``, on a held-out one. The PCA is also saved in every
checkpoint of a model built with it.

Example::

    python tools/analysis_tools/fit_meinst_pca.py \\
        data/coco/annotations/instances_train2017.json \\
        --out data/coco/meinst_pca_60.pth
"""
import argparse
import json
import os
import os.path as osp
import sys

import torch
from mmengine.utils import ProgressBar

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmifr.models.task_modules import PCAMaskCoder  # noqa: E402
from mmifr.utils.meinst_pca import fit_pca, iter_box_cropped_masks, reconstruction_iou  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('ann_file', help='COCO-format training annotations')
    parser.add_argument('--out', required=True, help='the .pth file to write')
    parser.add_argument('--dim', type=int, default=60, help='number of coefficients')
    parser.add_argument('--mask-size', type=int, default=28)
    parser.add_argument('--no-sigmoid', action='store_true', help='fit on the masks, not logits')
    parser.add_argument('--max-images', type=int, help='fit on the first N images only')
    parser.add_argument('--val-ann-file', help='also report the reconstruction IoU here')
    return parser.parse_args()


def _num_images(ann_file, max_images):
    with open(ann_file) as f:
        n = len(json.load(f)['images'])
    return min(n, max_images) if max_images else n


def mean_iou(coder, ann_file, mask_size, max_images=None):
    ious = [reconstruction_iou(coder, m) for m in iter_box_cropped_masks(
        ann_file, mask_size, max_images)]
    return torch.cat(ious).mean().item() if ious else float('nan')


def main():
    args = parse_args()
    bar = ProgressBar(_num_images(args.ann_file, args.max_images))
    pca = fit_pca(args.ann_file, args.dim, args.mask_size, sigmoid=not args.no_sigmoid,
                  max_images=args.max_images, on_image=bar.update)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    torch.save(pca, args.out)
    coder = PCAMaskCoder(args.dim, args.mask_size, pca_file=args.out,
                         sigmoid=not args.no_sigmoid)
    var = pca['explained_variance']
    print(f"\n[fit_meinst_pca] {pca['num_masks']} masks, {args.dim} components; "
          f'largest / smallest variance {var[0]:.3g} / {var[-1]:.3g}')
    print(f'[fit_meinst_pca] reconstruction IoU (train): '
          f'{mean_iou(coder, args.ann_file, args.mask_size, args.max_images):.3f}')
    if args.val_ann_file:
        print(f'[fit_meinst_pca] reconstruction IoU (val): '
              f'{mean_iou(coder, args.val_ann_file, args.mask_size):.3f}')
    print(f'[fit_meinst_pca] wrote {args.out}')


if __name__ == '__main__':
    main()
