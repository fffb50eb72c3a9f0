"""What BoxInst's colour prior sees in a dataset: pairs flagged similar, per threshold.

BoxInst (mmdet's ``BoxInstDataPreprocessor``) flags a pair of neighbouring pixels (3x3,
dilation 2, on the image average-pooled by the mask stride) as "same label" when the LAB
colour similarity ``exp(-||lab_p - lab_q|| / 2)`` reaches ``pairwise_color_thresh``; its
pairwise loss then pulls each box's predicted mask towards equal values on the flagged pairs
inside the box. With the ground-truth masks this tool counts, over the pairs inside each
object's box and for each threshold:

* ``recall``: of the pairs whose pixels both lie on the object, the fraction flagged (what
  the prior can teach);
* ``error``: of the flagged pairs, the fraction that cross the object's boundary (what it
  teaches wrong).

Run on two datasets it gives a data-driven threshold (``--match`` / ``--reference``): the
largest threshold at which one dataset's prior flags at least the share of same-object pairs
that the other's does at a reference threshold (mmdet's 0.3 on COCO) with no higher error;
if no threshold tried reaches that share, the one with the most recall within the error.
Writes ``<out>.json`` and ``<out>.md``.

Example::

    python tools/analysis_tools/boxinst_color_prior.py --data \
        shapes=data/shapes/annotations/instances_train.json:data/shapes/train \
        coco=$COCO/annotations/instances_train2017.json:$COCO/train2017 \
        --match shapes --reference coco --reference-thresh 0.3 \
        --out docs/results/boxinst_color_prior
"""
import argparse
import contextlib
import os.path as osp
import sys
from typing import Dict, List, Sequence

import cv2
import numpy as np
import torch
from mmengine.utils import track_iter_progress
from torch.nn import functional as F

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from tools.lib.outputs import write_results  # noqa: E402
from tools.lib.progress import log  # noqa: E402

THRESHOLDS = (0.02, 0.03, 0.04, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data', nargs='+', required=True,
                        help='NAME=ANN_FILE:IMAGE_DIR of each dataset')
    parser.add_argument('--thresholds', type=float, nargs='+', default=list(THRESHOLDS))
    parser.add_argument('--max-images', type=int, default=None, help='first N images of each')
    parser.add_argument('--mask-stride', type=int, default=4)
    parser.add_argument('--pairwise-size', type=int, default=3)
    parser.add_argument('--pairwise-dilation', type=int, default=2)
    parser.add_argument('--match', help='dataset whose threshold is chosen')
    parser.add_argument('--reference', help='dataset whose error rate it must not exceed')
    parser.add_argument('--reference-thresh', type=float, default=0.3)
    parser.add_argument('--out', default='work_dirs/boxinst_color_prior', help='output stem')
    args = parser.parse_args(argv)
    datasets = {}
    for item in args.data:
        name, sep, paths = item.partition('=')
        ann, sep2, img_dir = paths.partition(':')
        if not (sep and sep2 and name and ann and img_dir):
            parser.error(f'--data {item!r}: expected NAME=ANN_FILE:IMAGE_DIR')
        datasets[name] = (ann, img_dir)
    args.datasets = datasets
    if bool(args.match) != bool(args.reference):
        parser.error('--match and --reference go together')
    for name in (args.match, args.reference):
        if name and name not in datasets:
            parser.error(f'{name!r} is not one of the --data names {sorted(datasets)}')
    bad = [t for t in args.thresholds if not 0 < t <= 1]
    if bad:
        parser.error(f'--thresholds must lie in (0, 1], got {bad}')
    return args


def pair_counts(image_rgb: np.ndarray, masks: np.ndarray, boxes: np.ndarray,
                thresholds: Sequence[float], preprocessor) -> Dict[str, np.ndarray]:
    """Counts of one image's pairs inside each object's box, per threshold.

    Args:
        image_rgb (np.ndarray): ``(H, W, 3)`` uint8.
        masks (np.ndarray): ``(K, H, W)`` the objects' masks (0/1).
        boxes (np.ndarray): ``(K, 4)`` their boxes, ``x1, y1, x2, y2`` in pixels.
        thresholds: the colour-similarity thresholds.
        preprocessor: a ``BoxInstDataPreprocessor`` (its similarity and geometry).

    Returns:
        dict: ``same`` (pairs on the object, a scalar), and per threshold
        ``same_flagged``, ``flagged`` and ``flagged_cross`` ``(T,)``.
    """
    from mmdet.models.utils import unfold_wo_center
    from skimage.color import rgb2lab
    stride, size, dil = (preprocessor.mask_stride, preprocessor.pairwise_size,
                         preprocessor.pairwise_dilation)
    img = torch.from_numpy(image_rgb).permute(2, 0, 1)[None].float()
    pooled = F.avg_pool2d(img, kernel_size=stride, stride=stride)
    lab = torch.as_tensor(rgb2lab(pooled[0].byte().permute(1, 2, 0).numpy()),
                          dtype=torch.float32).permute(2, 0, 1)[None]
    h, w = lab.shape[-2:]
    inside = torch.ones(h, w)
    sim = preprocessor.get_images_color_similarity(lab, inside)[0]  # (P, h, w), 0 off the image
    valid = unfold_wo_center(inside[None, None], kernel_size=size, dilation=dil)[0] > 0
    start = stride // 2
    counts = dict(same=0, same_flagged=np.zeros(len(thresholds)),
                  flagged=np.zeros(len(thresholds)), flagged_cross=np.zeros(len(thresholds)))
    for mask, box in zip(masks, boxes):
        m = torch.from_numpy(mask[start::stride, start::stride][:h, :w]).float()
        if m.shape != (h, w):
            m = F.pad(m, (0, w - m.shape[1], 0, h - m.shape[0]))
        neighbour = unfold_wo_center(m[None, None], kernel_size=size, dilation=dil)[0]
        in_box = torch.zeros(h, w, dtype=torch.bool)
        x1, y1, x2, y2 = (box / stride).tolist()
        in_box[int(y1):int(np.ceil(y2)) + 1, int(x1):int(np.ceil(x2)) + 1] = True
        pairs = valid & in_box[None]
        same = pairs & (m[None] > 0) & (neighbour > 0)
        cross = pairs & ((m[None] > 0) != (neighbour > 0))
        counts['same'] += int(same.sum())
        for i, t in enumerate(thresholds):
            flagged = pairs & (sim >= t)
            counts['same_flagged'][i] += int((flagged & same).sum())
            counts['flagged'][i] += int(flagged.sum())
            counts['flagged_cross'][i] += int((flagged & cross).sum())
    return counts


def dataset_stats(ann_file: str, img_dir: str, thresholds, preprocessor,
                  max_images=None) -> List[dict]:
    """Per threshold: ``recall`` and ``error`` over a COCO-format dataset."""
    from pycocotools.coco import COCO
    with contextlib.redirect_stdout(sys.stderr):  # pycocotools prints its progress
        coco = COCO(ann_file)
    ids = sorted(coco.getImgIds())[:max_images]
    total = None
    log(f'{ann_file}: {len(ids)} images')
    for img_id in track_iter_progress(ids, file=sys.stderr):
        info = coco.loadImgs(img_id)[0]
        anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=img_id, iscrowd=False))
                if a['area'] > 0]
        if not anns:
            continue
        image = cv2.imread(osp.join(img_dir, info['file_name']))
        if image is None:
            raise FileNotFoundError(osp.join(img_dir, info['file_name']))
        masks = np.stack([coco.annToMask(a) for a in anns])
        boxes = np.array([[x, y, x + bw, y + bh] for x, y, bw, bh in (a['bbox'] for a in anns)])
        counts = pair_counts(image[..., ::-1].copy(), masks, boxes, thresholds, preprocessor)
        total = counts if total is None else {k: total[k] + v for k, v in counts.items()}
    if total is None:
        raise ValueError(f'{ann_file}: no image with an annotated object')
    return [dict(thresh=t,
                 recall=float(total['same_flagged'][i] / max(total['same'], 1)),
                 error=float(total['flagged_cross'][i] / max(total['flagged'][i], 1)),
                 flagged=int(total['flagged'][i])) for i, t in enumerate(thresholds)]


def matched_threshold(stats: List[dict], reference: List[dict], reference_thresh: float):
    """The threshold of ``stats`` that matches ``reference`` at ``reference_thresh``.

    Returns:
        tuple: the chosen entry of ``stats`` (the largest threshold with at
        least the reference's recall and at most its error; else the most
        recall within the error; ``None`` if every threshold errs more) and
        the reference's entry.
    """
    ref = min(reference, key=lambda s: abs(s['thresh'] - reference_thresh))
    within = [s for s in stats if s['error'] <= ref['error']]
    reaching = [s for s in within if s['recall'] >= ref['recall']]
    if reaching:
        return max(reaching, key=lambda s: s['thresh']), ref
    return (max(within, key=lambda s: s['recall']) if within else None), ref


def main(argv=None):
    args = parse_args(argv)
    from mmdet.models.data_preprocessors import BoxInstDataPreprocessor
    pre = BoxInstDataPreprocessor(mask_stride=args.mask_stride, pairwise_size=args.pairwise_size,
                                  pairwise_dilation=args.pairwise_dilation)
    torch.set_num_threads(1)
    result = dict(thresholds=args.thresholds, datasets={})
    for name, (ann, img_dir) in args.datasets.items():
        result['datasets'][name] = dataset_stats(ann, img_dir, args.thresholds, pre,
                                                 args.max_images)
    lines = ['| dataset | ' + ' | '.join(f'{t:g}' for t in args.thresholds) + ' |',
             '| --- |' + ' --- |' * len(args.thresholds)]
    for name, stats in result['datasets'].items():
        lines.append(f'| {name}: recall / error | ' + ' | '.join(
            f"{100 * s['recall']:.1f} / {100 * s['error']:.2f}" for s in stats) + ' |')
    if args.match:
        chosen, ref = matched_threshold(result['datasets'][args.match],
                                        result['datasets'][args.reference], args.reference_thresh)
        result['matched'] = dict(dataset=args.match, reference=args.reference,
                                 reference_thresh=ref['thresh'], reference_error=ref['error'],
                                 thresh=chosen and chosen['thresh'])
        lines += ['', f"{args.reference} at {ref['thresh']:g}: recall {100 * ref['recall']:.1f} %, "
                  f"error {100 * ref['error']:.2f} %; {args.match}'s matching threshold: " +
                  (f"**{chosen['thresh']:g}** (recall {100 * chosen['recall']:.1f} %, error "
                   f"{100 * chosen['error']:.2f} %)" if chosen else 'none of those tried')]
    markdown = '\n'.join(['# BoxInst colour prior: pairs flagged similar (recall of same-object '
                          'pairs / error: flagged pairs crossing the boundary, %)', ''] + lines)
    write_results(args.out, result, markdown + '\n')
    print(markdown)
    log(f'written {args.out}.json, {args.out}.md')
    return 0


if __name__ == '__main__':
    sys.exit(main())
