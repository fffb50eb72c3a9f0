"""Draw the predictions of several models side by side on the same images.

Each output PNG holds one image: the ground truth first (when the dataset has
annotations), then one panel per model with its predicted boxes and masks,
drawn by mmdet's ``DetLocalVisualizer``.

Example (the demo's stock and IFR models)::

    python tools/analysis_tools/compare_predictions.py \
        --configs configs/ifr/demo/mask-rcnn_mbv2_fpn_shapes_baseline.py \
                  configs/ifr/demo/mask-rcnn_mbv2_fpn_shapes_ifr.py \
        --checkpoints work_dirs/demo/.../baseline/iter_450.pth \
                      work_dirs/demo/.../ifr/iter_450.pth \
        --names stock IFR --num-images 4 --out-dir work_dirs/demo/vis
"""
import argparse
import os
import os.path as osp

import cv2
import mmcv
import numpy as np
from mmengine.config import Config
from mmengine.utils import ProgressBar

import mmifr  # noqa: F401  (registers the IFR heads)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--configs', nargs='+', required=True)
    parser.add_argument('--checkpoints', nargs='+', required=True)
    parser.add_argument('--names', nargs='+', help='panel titles (default: config names)')
    parser.add_argument('--num-images', type=int, default=4)
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--out-dir', default='work_dirs/compare_predictions')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    if len(args.configs) != len(args.checkpoints):
        parser.error(f'{len(args.configs)} --configs but {len(args.checkpoints)} --checkpoints')
    names = args.names or [osp.splitext(osp.basename(c))[0] for c in args.configs]
    if len(names) != len(args.configs):
        parser.error(f'{len(names)} --names for {len(args.configs)} --configs')
    args.names = names
    return args


def titled(img: np.ndarray, title: str) -> np.ndarray:
    """``img`` (H, W, 3, RGB) with a white title bar on top."""
    bar = np.full((28, img.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(bar, title, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, img], axis=0)


def main():
    args = parse_args()
    from mmdet.apis import inference_detector, init_detector
    from mmdet.registry import DATASETS, VISUALIZERS
    from mmdet.structures import DetDataSample

    models = [
        init_detector(Config.fromfile(c), ckpt, device=args.device)
        for c, ckpt in zip(args.configs, args.checkpoints)
    ]
    cfg = models[0].cfg
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    visualizer = VISUALIZERS.build(dict(type='DetLocalVisualizer', name='compare_predictions'))
    visualizer.dataset_meta = dataset.metainfo
    os.makedirs(args.out_dir, exist_ok=True)

    num = min(args.num_images, len(dataset))
    progress = ProgressBar(num)
    for idx in range(num):
        info = dataset.get_data_info(idx)
        image = mmcv.imconvert(mmcv.imread(info['img_path']), 'bgr', 'rgb')
        panels = []
        gt = dataset[idx]['data_samples']
        # The visualizer draws plain tensors, the pipeline packs box objects.
        gt.gt_instances.bboxes = getattr(gt.gt_instances.bboxes, 'tensor', gt.gt_instances.bboxes)
        if len(gt.gt_instances):
            # The test pipeline may resize: draw the ground truth on the image
            # it was annotated for, at the pipeline's scale.
            h, w = gt.img_shape
            gt_img = mmcv.imresize(image, (w, h))
            visualizer.add_datasample('gt', gt_img, gt, draw_gt=True, draw_pred=False)
            panels.append(titled(mmcv.imresize(visualizer.get_image(), image.shape[1::-1]),
                                 'ground truth'))
        for name, model in zip(args.names, models):
            result: DetDataSample = inference_detector(model, info['img_path'])
            visualizer.add_datasample(
                name, image, result, draw_gt=False, pred_score_thr=args.score_thr)
            num_shown = int((result.pred_instances.scores >= args.score_thr).sum())
            panels.append(titled(visualizer.get_image(), f'{name} ({num_shown} shown)'))
        stem = osp.splitext(osp.basename(info['img_path']))[0]
        out = osp.join(args.out_dir, f'{idx:03d}_{stem}.png')
        mmcv.imwrite(mmcv.imconvert(np.concatenate(panels, axis=1), 'rgb', 'bgr'), out)
        progress.update()
    print(f'\nwrote {num} images to {args.out_dir}')


if __name__ == '__main__':
    main()
