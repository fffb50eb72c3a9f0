# Copyright (c) mmifr contributors. All rights reserved.
"""Generate the built-in *shapes* instance-segmentation dataset (COCO format).

What the data is and how it is drawn: :mod:`tools.lib.shapes_data`.

Layout written under ``--out`` (default ``data/shapes``)::

    annotations/instances_train.json
    annotations/instances_val.json
    train/000000.jpg ...
    val/000000.jpg ...

Example::

    python tools/dataset_converters/make_shapes_dataset.py \
        --out data/shapes --num-train 200 --num-val 50 --size 320 --seed 0 \
        --vis 2
"""
import argparse
import os.path as osp
import sys
import time
from typing import Optional, Sequence

import cv2

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from tools.lib.shapes_data import CLASSES, make_dataset, parse_size, visualize  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate the synthetic COCO-format shapes dataset.')
    parser.add_argument('--out', default='data/shapes', help='output dataset root')
    parser.add_argument('--num-train', type=int, default=200, help='training images')
    parser.add_argument('--num-val', type=int, default=50, help='validation images')
    parser.add_argument('--size', type=parse_size, default=(320, 320),
                        help='image size, N or WxH (default 320)')
    parser.add_argument('--seed', type=int, default=0, help='dataset seed')
    parser.add_argument('--min-objects', type=int, default=3, help='min objects tried per image')
    parser.add_argument('--max-objects', type=int, default=8, help='max objects tried per image')
    parser.add_argument('--mask-format', choices=['rle', 'polygon'], default='rle',
                        help='segmentation encoding; rle is exact (default), polygon '
                        'falls back to rle for masks with holes')
    parser.add_argument('--ext', choices=['jpg', 'png'], default='jpg', help='image format')
    parser.add_argument('--vis', type=int, default=0, metavar='N',
                        help='also draw the first N train images with masks to '
                        '<out>/vis_train.png')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    # One thread: the work is tiny per call and machines are often shared.
    cv2.setNumThreads(1)
    t0 = time.time()
    make_dataset(
        args.out,
        num_train=args.num_train,
        num_val=args.num_val,
        size=args.size,
        seed=args.seed,
        mask_format=args.mask_format,
        ext=args.ext,
        num_objects=(args.min_objects, args.max_objects))
    print(f'wrote {args.out} in {time.time() - t0:.1f}s; classes={CLASSES}')
    if args.vis > 0:
        print(f'visualisation: {visualize(args.out, "train", args.vis)}')


if __name__ == '__main__':
    main()
