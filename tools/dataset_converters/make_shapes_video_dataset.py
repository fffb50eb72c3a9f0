# Copyright (c) mmifr contributors. All rights reserved.
"""Generate the built-in *shapes video* dataset (YouTube-VIS 2019 format).

Short clips of the shapes dataset's objects (same classes, outlines and
textures, :mod:`tools.lib.shapes_data`) moving, rotating and scaling over a
textured background, so that video instance segmentation can be trained and
scored end to end on a CPU:

* every object keeps its track id, outline and texture (the texture moves
  with it) through the clip;
* objects enter late or leave early (appear / disappear), drift in or out
  across the image border, and occlude one another (a random depth order;
  each mask is the *visible* part), so that tracking matters;
* a frame where an object is absent or shows less than ``min_area`` pixels
  has ``null`` segmentation, box and area, as in YouTube-VIS.

Layout written under ``--out`` (default ``data/shapes_video``)::

    train/JPEGImages/<video>/00000.jpg ...   val/JPEGImages/...
    annotations/train.json, val.json                (YouTube-VIS 2019 format)
    annotations/youtube_vis_train.json, ..._val.json  (mmdet's CocoVID form, which
                                                     mmdet's YouTubeVISDataset loads)

Each clip is drawn from its own random stream seeded by
``(seed, split, index)``: reproducible, and a split of N clips is a prefix of
one of M > N clips.

Example::

    python tools/dataset_converters/make_shapes_video_dataset.py --out data/shapes_video
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from tools.lib.shapes_data import (CLASSES, SPLIT_IDS, encode_mask, parse_size,  # noqa: E402
                                   random_texture, render_shape, rotate, sample_target_area,
                                   unit_shape, visible_masks)

#: Half-size of an object's texture patch in unit-shape coordinates.
_PATCH_EXTENT = 1.25


def _track(rng: np.random.Generator, label: int, num_frames: int, height: int,
           width: int) -> Dict:
    """Sample one object's shape, texture, motion and lifetime."""
    rings, unit_area = unit_shape(rng, label)
    scale0 = np.sqrt(sample_target_area(rng, height, width) / unit_area)
    start, end = 0, num_frames
    event = rng.choice(['none', 'enter', 'leave'], p=[0.4, 0.3, 0.3])
    if event == 'enter':
        start = int(rng.integers(1, max(2, num_frames // 2)))
    elif event == 'leave':
        end = int(rng.integers(num_frames // 2 + 1, num_frames))
    # Drift of up to ~1/3 of the image over the clip: some leave the image.
    speed = rng.uniform(0.2, 1.0) * max(height, width) / (3 * num_frames)
    direction = rng.uniform(0, 2 * np.pi)
    return dict(
        label=label,
        rings=rings,
        scale=(scale0, rng.uniform(-0.03, 0.03)),
        angle=(0.0, rng.uniform(-0.15, 0.15)),
        center=(rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height),
        velocity=(speed * np.cos(direction), speed * np.sin(direction)),
        frames=(start, end),
        patch=random_texture(rng, 64, 64))


def _pose(track: Dict, t: int) -> Tuple[Tuple[float, float], float, float]:
    (cx, cy), (vx, vy) = track['center'], track['velocity']
    scale = track['scale'][0] * (1 + track['scale'][1])**t
    return (cx + vx * t, cy + vy * t), track['angle'][1] * t, scale


def _render(track: Dict, t: int, height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    """The object's full mask at frame ``t`` and its texture warped there."""
    center, angle, scale = _pose(track, t)
    rings = [rotate(r, angle) for r in track['rings']]
    mask = render_shape(rings, center, scale, height, width)
    # Patch pixel p -> unit coords u = (p - c) * k -> image R(angle) * scale * u + center.
    size = track['patch'].shape[0]
    k = 2 * _PATCH_EXTENT / size
    rot = rotate(np.eye(2), angle).T * scale * k
    offset = np.asarray(center) - rot @ np.array([size / 2, size / 2])
    texture = cv2.warpAffine(track['patch'], np.hstack([rot, offset[:, None]]), (width, height),
                             flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return mask, texture


def generate_video(rng: np.random.Generator,
                   num_frames: int = 10,
                   height: int = 192,
                   width: int = 192,
                   num_objects: Tuple[int, int] = (2, 4),
                   min_area: int = 20) -> Tuple[List[np.ndarray], List[Dict]]:
    """One clip: ``num_frames`` BGR uint8 frames and its tracks.

    Returns:
        tuple: the frames and, per track, ``label``, ``masks`` (visible,
        ``None`` where absent or under ``min_area`` pixels) and
        ``full_areas`` (of the unoccluded shape, 0 where absent).
    """
    background = random_texture(rng, height, width)
    tracks = [
        _track(rng, int(rng.integers(len(CLASSES))), num_frames, height, width)
        for _ in range(int(rng.integers(num_objects[0], num_objects[1] + 1)))
    ]
    order = rng.permutation(len(tracks))  # painting order: later occludes earlier
    frames = []
    out = [dict(label=tr['label'], masks=[], full_areas=[]) for tr in tracks]
    for t in range(num_frames):
        canvas = background.copy()
        full = {}
        for i in order:
            start, end = tracks[i]['frames']
            if start <= t < end:
                mask, texture = _render(tracks[i], t, height, width)
                canvas[mask] = texture[mask]
                full[i] = mask
        painted = list(full)
        visible = dict(zip(painted, visible_masks([full[i] for i in painted])))
        for i, track in enumerate(out):
            mask = visible.get(i)
            keep = mask is not None and int(mask.sum()) >= min_area
            track['masks'].append(mask if keep else None)
            track['full_areas'].append(int(full[i].sum()) if i in full else 0)
        canvas += rng.normal(0, 4, size=canvas.shape).astype(np.float32)
        frames.append(np.clip(canvas, 0, 255).astype(np.uint8))
    return frames, [tr for tr in out if any(m is not None for m in tr['masks'])]


def ytvis_to_cocovid(ytvis: Dict) -> Dict:
    """YouTube-VIS json -> the CocoVID json mmdet's ``YouTubeVISDataset``
    reads: one image per frame (``video_id``, ``frame_id``), one annotation
    per visible (track, frame) with its ``instance_id`` (the track id, from
    1) and ``segmentation`` / ``bbox`` / ``area``."""
    images, annotations = [], []
    frame_ids = {}
    for video in ytvis['videos']:
        for frame_id, name in enumerate(video['file_names']):
            image_id = len(images) + 1
            frame_ids[(video['id'], frame_id)] = image_id
            images.append(dict(id=image_id, video_id=video['id'], frame_id=frame_id,
                               file_name=name, height=video['height'], width=video['width']))
    for ann in ytvis['annotations']:
        for frame_id, segm in enumerate(ann['segmentations']):
            if segm is None:
                continue
            annotations.append(dict(
                id=len(annotations) + 1, image_id=frame_ids[(ann['video_id'], frame_id)],
                video_id=ann['video_id'], category_id=ann['category_id'],
                instance_id=ann['id'], segmentation=segm, bbox=ann['bboxes'][frame_id],
                area=ann['areas'][frame_id], iscrowd=ann.get('iscrowd', 0)))
    videos = [dict(id=v['id'], name=osp.dirname(v['file_names'][0])) for v in ytvis['videos']]
    return dict(categories=ytvis['categories'], videos=videos, images=images,
                annotations=annotations)


def generate_split(out_dir: str, split: str, num_videos: int, num_frames: int = 10,
                   size: Tuple[int, int] = (192, 192), seed: int = 0, **video_kwargs) -> Dict:
    """Write one split's frames and both json files; returns the YouTube-VIS dict."""
    width, height = size
    videos, annotations = [], []
    for index in range(num_videos):
        rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
        frames, tracks = generate_video(rng, num_frames, height, width, **video_kwargs)
        name = f'{split}_{index:04d}'
        os.makedirs(osp.join(out_dir, split, 'JPEGImages', name), exist_ok=True)
        file_names = [f'{name}/{t:05d}.jpg' for t in range(num_frames)]
        for file_name, frame in zip(file_names, frames):
            cv2.imwrite(osp.join(out_dir, split, 'JPEGImages', file_name), frame,
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
        video_id = index + 1
        videos.append(dict(id=video_id, width=width, height=height, length=num_frames,
                           file_names=file_names))
        for track in tracks:
            segms, bboxes, areas = [], [], []
            for mask in track['masks']:
                if mask is None:
                    segms.append(None), bboxes.append(None), areas.append(None)
                    continue
                ys, xs = np.nonzero(mask)
                segms.append(encode_mask(mask))
                bboxes.append([float(xs.min()), float(ys.min()),
                               float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)])
                areas.append(float(mask.sum()))
            annotations.append(dict(id=len(annotations) + 1, video_id=video_id,
                                    category_id=track['label'] + 1, iscrowd=0,
                                    height=height, width=width, length=1, segmentations=segms,
                                    bboxes=bboxes, areas=areas))
    categories = [dict(id=i + 1, name=n, supercategory='shape') for i, n in enumerate(CLASSES)]
    ytvis = dict(info=dict(description=f'mmifr shapes video, split {split}, seed {seed}'),
                 licenses=[], categories=categories, videos=videos, annotations=annotations)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    with open(osp.join(out_dir, 'annotations', f'{split}.json'), 'w') as f:
        json.dump(ytvis, f)
    with open(osp.join(out_dir, 'annotations', f'youtube_vis_{split}.json'), 'w') as f:
        json.dump(ytvis_to_cocovid(ytvis), f)
    return ytvis


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='data/shapes_video', help='output dataset root')
    parser.add_argument('--num-train', type=int, default=40, help='training clips')
    parser.add_argument('--num-val', type=int, default=10, help='validation clips')
    parser.add_argument('--frames', type=int, default=10, help='frames per clip')
    parser.add_argument('--size', type=parse_size, default=(192, 192), help='N or WxH')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    cv2.setNumThreads(1)
    t0 = time.time()
    for split, num in (('train', args.num_train), ('val', args.num_val)):
        ytvis = generate_split(args.out, split, num, args.frames, args.size, args.seed)
        visible = sum(s is not None for a in ytvis['annotations'] for s in a['segmentations'])
        print(f'{split}: {num} clips x {args.frames} frames, {len(ytvis["annotations"])} '
              f'tracks, {visible} visible (track, frame) masks')
    print(f'wrote {args.out} in {time.time() - t0:.1f}s; classes={CLASSES}')


if __name__ == '__main__':
    main()
