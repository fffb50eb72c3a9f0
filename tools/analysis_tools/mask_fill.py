"""How well an instance segmenter's masks fill its objects: area and IoU of matched predictions.

Runs a trained model on the images of its config's test set and matches each ground-truth object
to the highest-scoring detection of its class whose box overlaps it at IoU >= ``--box-iou``
(each detection used once). Per matched object it records the predicted mask's area over the
ground truth's (``area_ratio``), the mask IoU and the fraction of the predicted box the mask
fills (``box_fill``); the summary gives their medians and the share of objects matched. It tells
a detector that finds the objects but under-fills them (a box-supervised model whose pairwise
term did not spread the mask) from one that misses them. Writes ``<out>.json``.

Example::

    python tools/analysis_tools/mask_fill.py configs/ifr/demo/boxinst_mbv2_fpn_shapes_baseline.py \\
        work_dirs/boxinst/iter_450.pth --out work_dirs/boxinst/mask_fill
"""
import argparse
import contextlib
import json
import os.path as osp
import statistics
import sys
from typing import Dict, List

import numpy as np
import pycocotools.mask as mask_utils
import torch
from mmengine.utils import track_iter_progress

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from tools.lib.progress import log, quiet_mmengine  # noqa: E402
from tools.lib.shapes_data import segmentation_to_rle  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--box-iou', type=float, default=0.5, help='box IoU of a match')
    parser.add_argument('--score-thr', type=float, default=0.05, help='detections kept')
    parser.add_argument('--num-images', type=int, default=None, help='first N test images')
    parser.add_argument('--out', default=None, help='output stem (default: next to the checkpoint)')
    args = parser.parse_args(argv)
    if not 0 < args.box_iou <= 1:
        parser.error(f'--box-iou must lie in (0, 1], got {args.box_iou}')
    return args


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(A, B)`` IoU of ``x1, y1, x2, y2`` boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None] - inter, 1e-9)


def match_objects(gt_boxes: np.ndarray, gt_labels: np.ndarray, gt_masks: np.ndarray,
                  boxes: np.ndarray, labels: np.ndarray, scores: np.ndarray, masks: np.ndarray,
                  box_iou: float) -> List[Dict[str, float]]:
    """One record per ground-truth object: ``matched`` and, if so, the mask statistics.

    Args:
        gt_boxes, gt_labels, gt_masks: ``(G, 4)``, ``(G,)``, ``(G, H, W)`` bool.
        boxes, labels, scores, masks: the detections, ``(D, 4)``, ``(D,)``, ``(D,)``,
            ``(D, H, W)`` bool.
        box_iou (float): the box IoU a match needs.
    """
    ious = _box_iou(gt_boxes, boxes) if len(gt_boxes) and len(boxes) else np.zeros(
        (len(gt_boxes), len(boxes)))
    used = np.zeros(len(boxes), bool)
    records = []
    for g in range(len(gt_boxes)):
        ok = (ious[g] >= box_iou) & (labels == gt_labels[g]) & ~used
        if not ok.any():
            records.append(dict(matched=False))
            continue
        d = int(np.flatnonzero(ok)[np.argmax(scores[ok])])
        used[d] = True
        pred, gt = masks[d], gt_masks[g]
        x1, y1, x2, y2 = boxes[d]
        box_area = max((x2 - x1) * (y2 - y1), 1.0)
        union = (pred | gt).sum()
        records.append(dict(matched=True, area_ratio=float(pred.sum() / max(gt.sum(), 1)),
                            mask_iou=float((pred & gt).sum() / max(union, 1)),
                            box_fill=float(pred.sum() / box_area)))
    return records


def decode(segm, height: int, width: int) -> np.ndarray:
    """A COCO ``segmentation`` (polygons or RLE) as an ``(H, W)`` bool mask."""
    return mask_utils.decode(segmentation_to_rle(segm, height, width)).astype(bool)


def summarise(records: List[Dict[str, float]]) -> dict:
    matched = [r for r in records if r['matched']]
    out = dict(objects=len(records), matched=len(matched),
               matched_share=len(matched) / max(len(records), 1))
    for key in ('area_ratio', 'mask_iou', 'box_fill'):
        values = [r[key] for r in matched]
        out[f'median_{key}'] = statistics.median(values) if values else None
    return out


def main(argv=None):
    args = parse_args(argv)
    quiet_mmengine()
    from mmdet.apis import inference_detector, init_detector
    from mmdet.registry import DATASETS
    from mmengine.config import Config
    import mmifr  # noqa: F401  (registers the IFR heads)
    torch.set_num_threads(1)
    cfg = Config.fromfile(args.config)
    with contextlib.redirect_stdout(sys.stderr):  # mmengine and pycocotools print progress
        model = init_detector(cfg, args.checkpoint, device='cpu')
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
    n = min(args.num_images or len(dataset), len(dataset))
    records = []
    for i in track_iter_progress(list(range(n)), file=sys.stderr):
        info = dataset.get_data_info(i)
        instances = [x for x in info['instances'] if not x.get('ignore_flag', 0)]
        height, width = info['height'], info['width']
        gt_masks = [decode(x['mask'], height, width) for x in instances]
        pred = inference_detector(model, info['img_path']).pred_instances
        keep = pred.scores >= args.score_thr
        records += match_objects(
            np.array([x['bbox'] for x in instances], np.float32).reshape(-1, 4),
            np.array([x['bbox_label'] for x in instances]),
            np.stack(gt_masks) if gt_masks else np.zeros((0, height, width), bool),
            pred.bboxes[keep].numpy(), pred.labels[keep].numpy(), pred.scores[keep].numpy(),
            pred.masks[keep].numpy().astype(bool), args.box_iou)
    summary = dict(config=args.config, checkpoint=args.checkpoint, images=n,
                   box_iou=args.box_iou, score_thr=args.score_thr, **summarise(records))
    out = args.out or osp.join(osp.dirname(args.checkpoint), 'mask_fill')
    with open(f'{out}.json', 'w') as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary, indent=2))
    log(f'written {out}.json')
    return 0


if __name__ == '__main__':
    sys.exit(main())
