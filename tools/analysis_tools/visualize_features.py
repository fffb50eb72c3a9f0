"""RoI features before and after refinement, stock head vs IFR (paper Fig. 4).

For a few objects in the given images the tool draws one row each:

(a) the object cropped from the image,
(b) its RoI feature ``X`` as the stock model's RoIAlign gives it,
(c) that feature after the stock mask head's stacked convs,
(d) its RoI feature ``X`` in the IFR model,
(e) the IFR equilibrium ``H*``.

The objects are the IFR model's highest-scoring detections (the same boxes
are used for both models), or the ground truth with ``--ann-file``. Each
feature map (``C x S x S``) is drawn as its per-position L2 norm over
channels (``--mode norm``), channel mean (``mean``), or its first three
principal components as RGB (``pca``).

Example::

    python tools/analysis_tools/visualize_features.py \\
        --baseline-config configs/ifr/demo/mask-rcnn_mbv2_fpn_shapes_baseline.py \\
        --baseline-checkpoint work_dirs/demo/mask_rcnn_mbv2_shapes/baseline/iter_450.pth \\
        --ifr-config configs/ifr/demo/mask-rcnn_mbv2_fpn_shapes_ifr.py \\
        --ifr-checkpoint work_dirs/demo/mask_rcnn_mbv2_shapes/ifr/iter_450.pth \\
        --images data/shapes/val/000000.jpg data/shapes/val/000001.jpg --out features.png
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from tools.lib.models import NO_PRETRAINED_BACKBONE, build_detector  # noqa: E402
from tools.lib.progress import log, quiet_mmengine  # noqa: E402
from tools.lib.roi_features import mask_roi_features  # noqa: E402

MODES = ('norm', 'mean', 'pca')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--baseline-config', required=True)
    parser.add_argument('--baseline-checkpoint', required=True,
                        help='checkpoint of the stock model ("none": random weights)')
    parser.add_argument('--ifr-config', required=True)
    parser.add_argument('--ifr-checkpoint', required=True,
                        help='checkpoint of the IFR model ("none": random weights)')
    parser.add_argument('--images', nargs='+', required=True, help='image files')
    parser.add_argument('--ann-file', help='COCO json: use its ground-truth boxes')
    parser.add_argument('--objects-per-image', type=int, default=2)
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detections below are used only if none is above')
    parser.add_argument('--mode', choices=MODES, default='norm')
    parser.add_argument('--out', default='work_dirs/features/ifr_features.png')
    parser.add_argument('--threads', type=int, default=1)
    return parser.parse_args(argv)


def load(config: str, checkpoint: Optional[str]) -> nn.Module:
    """The detector of ``config`` with ``checkpoint``'s weights (``None``: random ones)."""
    return build_detector(config, None if checkpoint else NO_PRETRAINED_BACKBONE, checkpoint)[0]


def preprocess(model: nn.Module, img_path: str) -> dict:
    """The model's test pipeline on one image, then its data preprocessor."""
    from mmcv.transforms import Compose
    from mmengine.dataset import pseudo_collate
    pipeline = [t for t in model.cfg.test_pipeline if t['type'] != 'LoadAnnotations']
    data = Compose(pipeline)(dict(img_path=img_path, img_id=0))
    return model.data_preprocessor(pseudo_collate([data]), False)


def gt_boxes(ann_file: str, img_path: str) -> Tuple[Tensor, List[int]]:
    with open(ann_file) as f:
        coco = json.load(f)
    name = osp.basename(img_path)
    img = next((i for i in coco['images'] if osp.basename(i['file_name']) == name), None)
    if img is None:
        return torch.zeros(0, 4), []
    anns = [a for a in coco['annotations'] if a['image_id'] == img['id']]
    boxes = [[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
              a['bbox'][1] + a['bbox'][3]] for a in anns]
    return torch.tensor(boxes, dtype=torch.float32).view(-1, 4), [a['category_id'] for a in anns]


@torch.no_grad()
def select_boxes(model: nn.Module, img_path: str, args) -> Tuple[Tensor, List[str]]:
    """Boxes (original image coordinates) of the objects to draw, and titles."""
    if args.ann_file:
        boxes, cats = gt_boxes(args.ann_file, img_path)
        order = torch.argsort((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]),
                              descending=True)[:args.objects_per_image]
        return boxes[order], [f'GT cat {cats[i]}' for i in order.tolist()]
    data = preprocess(model, img_path)
    pred = model(**data, mode='predict')[0].pred_instances
    if len(pred) == 0:
        return torch.zeros(0, 4), []
    keep = pred.scores >= args.score_thr
    if not keep.any():
        keep = torch.zeros_like(keep)
        keep[pred.scores.argmax()] = True
    pred = pred[keep]
    order = torch.argsort(pred.scores, descending=True)[:args.objects_per_image]
    classes = model.dataset_meta.get('classes') if getattr(model, 'dataset_meta', None) else None
    titles = []
    for i in order.tolist():
        label = int(pred.labels[i])
        name = classes[label] if classes and label < len(classes) else f'class {label}'
        titles.append(f'{name} {float(pred.scores[i]):.2f}')
    return pred.bboxes[order], titles


@torch.no_grad()
def roi_features(model: nn.Module, img_path: str, boxes: Tensor) -> Tensor:
    """``(N, C, S, S)`` mask RoI features of ``boxes`` (original image coordinates)."""
    data = preprocess(model, img_path)
    meta = data['data_samples'][0].metainfo
    sx, sy = meta.get('scale_factor', (1.0, 1.0))
    scaled = boxes * boxes.new_tensor([sx, sy, sx, sy])
    return mask_roi_features(model, data['inputs'], [scaled])


@torch.no_grad()
def refine_stock(model: nn.Module, feats: Tensor) -> Tensor:
    h = feats
    for conv in model.roi_head.mask_head.convs:
        h = conv(h)
    return h


@torch.no_grad()
def refine_ifr(model: nn.Module, feats: Tensor) -> Tensor:
    h = feats
    for module in model.roi_head.mask_head.convs:  # the container holding the refiner
        h = module(h)
    return h


def render(feat: Tensor, mode: str) -> np.ndarray:
    """``(C, S, S)`` -> an ``(S, S)`` map in [0, 1] or an ``(S, S, 3)`` RGB image."""
    f = feat.double()
    if mode == 'norm':
        img = f.norm(dim=0)
    elif mode == 'mean':
        img = f.mean(dim=0)
    else:
        c, s1, s2 = f.shape
        flat = f.reshape(c, -1).T
        flat = flat - flat.mean(dim=0, keepdim=True)
        _, _, v = torch.linalg.svd(flat, full_matrices=False)
        comps = flat @ v[:3].T
        comps = comps - comps.min(dim=0).values
        comps = comps / comps.max(dim=0).values.clamp_min(1e-12)
        return comps.reshape(s1, s2, -1).numpy()
    img = img - img.min()
    return (img / img.max().clamp_min(1e-12)).numpy()


def crop(img_path: str, box: Tensor) -> np.ndarray:
    import mmcv
    img = mmcv.imread(img_path, channel_order='rgb')
    h, w = img.shape[:2]
    x1, y1, x2, y2 = box.tolist()
    x1, y1 = max(0, int(x1)), max(0, int(y1))
    x2, y2 = min(w, max(x1 + 1, int(round(x2)))), min(h, max(y1 + 1, int(round(y2))))
    return img[y1:y2, x1:x2]


COLUMNS = ('(a) object', '(b) X, stock model', '(c) after 4 convs', '(d) X, IFR model',
           '(e) IFR: H*')


def draw(rows: List[Dict], mode: str, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    n = len(rows)
    fig, axes = plt.subplots(n, len(COLUMNS), figsize=(2.3 * len(COLUMNS), 2.3 * n + 0.4),
                             squeeze=False)
    cmap = 'viridis'
    for r, row in enumerate(rows):
        panels = [row['crop'], row['x_stock'], row['h_stock'], row['x_ifr'], row['h_ifr']]
        for c, panel in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(panel, cmap=None if panel.ndim == 3 else cmap, interpolation='nearest')
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(COLUMNS[c], fontsize=9)
        axes[r, 0].set_ylabel(row['title'], fontsize=8)
    fig.suptitle(f'RoI features (mode: {mode}; each panel normalised to its own range)',
                 fontsize=9)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> List[Dict]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    quiet_mmengine()

    def ckpt(value):
        return None if value.lower() == 'none' else value

    stock = load(args.baseline_config, ckpt(args.baseline_checkpoint))
    ifr = load(args.ifr_config, ckpt(args.ifr_checkpoint))
    if not hasattr(ifr.roi_head.mask_head, 'ifr_towers'):
        raise ValueError(f'{args.ifr_config}: the mask head is not an IFR head')
    rows, meta = [], []
    for img_path in args.images:
        boxes, titles = select_boxes(ifr, img_path, args)
        if boxes.shape[0] == 0:
            log(f'[features] {img_path}: no object found, skipped')
            continue
        x_stock = roi_features(stock, img_path, boxes)
        x_ifr = roi_features(ifr, img_path, boxes)
        h_stock = refine_stock(stock, x_stock)
        h_ifr = refine_ifr(ifr, x_ifr)
        for i, title in enumerate(titles):
            rows.append(dict(
                title=f'{osp.basename(img_path)}\n{title}',
                crop=crop(img_path, boxes[i]),
                x_stock=render(x_stock[i], args.mode),
                h_stock=render(h_stock[i], args.mode),
                x_ifr=render(x_ifr[i], args.mode),
                h_ifr=render(h_ifr[i], args.mode)))
            meta.append(dict(image=img_path, box=boxes[i].tolist(), title=title))
    if not rows:
        raise ValueError('no object found in any image')
    draw(rows, args.mode, args.out)
    with open(osp.splitext(args.out)[0] + '.json', 'w') as f:
        json.dump(dict(mode=args.mode, objects=meta, columns=COLUMNS), f, indent=2)
    log(f'[features] wrote {args.out} ({len(rows)} objects)')
    return meta


if __name__ == '__main__':
    main()
