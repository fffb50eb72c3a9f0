"""The synthetic *shapes* instance-segmentation data: textures, shapes,
images with their visible masks, and COCO splits written to disk.

The data exists so that mmifr can be trained and evaluated end to end without
downloading anything, in minutes on a CPU (``tools/dataset_converters/
make_shapes_dataset.py`` writes it, ``make_shapes_video_dataset.py`` moves the
same shapes over clips). It is small but not trivial:

* 4 classes (``ellipse``, ``triangle``, ``star``, ``ring``) whose masks have
  convex, concave and holed outlines, so mask quality matters;
* objects at small, medium and large COCO scales (the area of each object is
  sampled per COCO area range, so ``APs/APm/APl`` are all meaningful);
* partial occlusion: objects are painted in order, later ones occlude earlier
  ones, and every mask is the *visible* part of its object;
* shapes and backgrounds are filled with textures drawn from the *same*
  distribution (gradients, smooth noise, stripes) plus unannotated clutter and
  sensor noise, so colour alone does not segment an image.

Every image is generated from its own random stream seeded by
``(seed, split, index)``, so a split of N images is a prefix of a split of
M > N images with the same seed, and the output is bit-for-bit reproducible.
"""
import argparse
import json
import math
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import pycocotools.mask as mask_utils

#: Class names in category-id order (COCO category ids are ``index + 1``).
CLASSES = ('ellipse', 'triangle', 'star', 'ring')
#: One RGB colour per class, for mmdet's ``metainfo['palette']`` and ``--vis``.
PALETTE = [(220, 20, 60), (0, 130, 255), (255, 190, 0), (60, 200, 60)]

#: COCO area ranges (pixels): small < 32^2 <= medium < 96^2 <= large.
COCO_AREA_RANGES = {'small': (0, 32**2), 'medium': (32**2, 96**2), 'large': (96**2, math.inf)}

# Target mask areas are sampled log-uniformly inside one of these bins, chosen
# with ``SCALE_PROBS``; bounds are relative to a 320x320 image and rescaled
# with the image area so other sizes keep the same object/image ratios. The
# lower bound keeps objects a few feature-map cells wide (stride-4 P2).
_SCALE_BINS = ((80, 32**2), (32**2, 96**2), (96**2, 24000))
SCALE_PROBS = (0.4, 0.4, 0.2)
_REF_AREA = 320 * 320

SPLIT_IDS = {'train': 0, 'val': 1, 'test': 2}


# --------------------------------------------------------------------------
# Textures
# --------------------------------------------------------------------------
def random_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Sample a colour texture; used for backgrounds *and* object fills.

    Using one distribution for both is the point: an object can only be told
    apart from the background by its outline and by texture discontinuities,
    not by a colour a threshold could pick.

    Args:
        rng (np.random.Generator): Random stream.
        height (int): Texture height.
        width (int): Texture width.

    Returns:
        np.ndarray: ``(height, width, 3)`` float32 image in [0, 255] (BGR).
    """
    c0, c1 = rng.uniform(0, 255, size=(2, 3))
    # Linear gradient between two random colours along a random direction.
    theta = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = xx * np.cos(theta) + yy * np.sin(theta)
    t = (t - t.min()) / max(float(np.ptp(t)), 1.0)
    tex = c0[None, None] + (c1 - c0)[None, None] * t[..., None]

    # Smooth (low-frequency) colour noise: a coarse random grid upsampled.
    cell = int(rng.integers(8, 33))
    gh, gw = max(2, height // cell + 2), max(2, width // cell + 2)
    grid = rng.normal(0, rng.uniform(10, 35), size=(gh, gw, 3)).astype(np.float32)
    tex += cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)

    kind = rng.integers(0, 3)
    if kind == 1:
        # Stripes mixing in a third colour: a strong, oriented texture edge.
        c2 = rng.uniform(0, 255, size=3)
        phi = rng.uniform(0, 2 * np.pi)
        period = rng.uniform(4, 24)
        s = 0.5 + 0.5 * np.sin(2 * np.pi * (xx * np.cos(phi) + yy * np.sin(phi)) / period)
        alpha = rng.uniform(0.2, 0.6)
        tex = tex * (1 - alpha * s[..., None]) + c2[None, None] * (alpha * s[..., None])
    elif kind == 2:
        # Speckles: fine-grained noise at a random grain size.
        grain = int(rng.integers(1, 4))
        sh, sw = height // grain + 1, width // grain + 1
        speck = rng.normal(0, rng.uniform(8, 25), size=(sh, sw, 1)).astype(np.float32)
        speck = cv2.resize(speck, (sw * grain, sh * grain),
                           interpolation=cv2.INTER_NEAREST)[:height, :width]
        tex += speck[..., None] if speck.ndim == 2 else speck
    return tex.astype(np.float32)


# --------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------
def rotate(points: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return points @ np.array([[c, s], [-s, c]], dtype=np.float64)


def _poly_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def unit_shape(rng: np.random.Generator, label: int) -> Tuple[List[np.ndarray], float]:
    """Sample a shape of unit scale centred at the origin.

    Returns:
        tuple: ``(rings, area)`` where ``rings`` is a list of (N, 2) polygons,
        the first being the outline and any further ones holes, and ``area``
        is the filled area at unit scale (used to hit a target pixel area).
    """
    name = CLASSES[label]
    angle = rng.uniform(0, 2 * np.pi)
    if name in ('ellipse', 'ring'):
        # Bounded aspect ratio so an ellipse never degenerates into a stick.
        a, b = 1.0, rng.uniform(0.55, 1.0)
        ts = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        outer = np.stack([a * np.cos(ts), b * np.sin(ts)], axis=1)
        rings = [rotate(outer, angle)]
        area = np.pi * a * b
        if name == 'ring':
            # Hole wide enough to stay visible for small rings too.
            k = rng.uniform(0.45, 0.7)
            rings.append(rings[0] * k)
            area *= 1 - k * k
        return rings, area
    if name == 'triangle':
        # Jittered equilateral triangle: angles stay well away from 0.
        base = np.array([0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.uniform(-0.35, 0.35, size=3)
        r = rng.uniform(0.75, 1.0, size=3)
        pts = np.stack([r * np.cos(base), r * np.sin(base)], axis=1)
        pts = rotate(pts, angle)
        return [pts], _poly_area(pts)
    # star
    n = int(rng.integers(5, 8))
    inner = rng.uniform(0.4, 0.6)
    ts = np.arange(2 * n) * np.pi / n
    r = np.where(np.arange(2 * n) % 2 == 0, 1.0, inner)
    pts = rotate(np.stack([r * np.cos(ts), r * np.sin(ts)], axis=1), angle)
    return [pts], _poly_area(pts)


def render_shape(rings: Sequence[np.ndarray], center: Tuple[float, float], scale: float,
                 height: int, width: int) -> np.ndarray:
    """Rasterise a shape (outline + holes) into a full-image boolean mask."""
    mask = np.zeros((height, width), np.uint8)
    # 4 bits of sub-pixel precision so small shapes keep their geometry.
    shift = 4
    polys = [np.round((r * scale + np.asarray(center)) * (1 << shift)).astype(np.int32)
             for r in rings]
    cv2.fillPoly(mask, polys[:1], 1, lineType=cv2.LINE_8, shift=shift)
    if len(polys) > 1:
        cv2.fillPoly(mask, polys[1:], 0, lineType=cv2.LINE_8, shift=shift)
    return mask.astype(bool)


def sample_target_area(rng: np.random.Generator, height: int, width: int) -> float:
    """Sample an object area (pixels) in one of the small/medium/large bins.

    The bins follow COCO's area ranges at 320x320 and scale with the image
    area otherwise.
    """
    ratio = height * width / _REF_AREA
    lo, hi = _SCALE_BINS[rng.choice(len(_SCALE_BINS), p=SCALE_PROBS)]
    return float(np.exp(rng.uniform(np.log(lo * ratio), np.log(hi * ratio))))


# --------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------
def visible_masks(full_masks: Sequence[np.ndarray]) -> List[np.ndarray]:
    """Visible part of each mask when painted in order (later ones on top).

    Args:
        full_masks (Sequence[np.ndarray]): Boolean ``(H, W)`` masks of the
            complete shapes, in painting order.

    Returns:
        list[np.ndarray]: Boolean visible masks, pairwise disjoint.
    """
    visible = []
    covered = None
    for m in reversed(full_masks):
        covered = np.zeros_like(m) if covered is None else covered
        visible.append(m & ~covered)
        covered = covered | m
    return visible[::-1]


def _paint(rng: np.random.Generator, canvas: np.ndarray, mask: np.ndarray,
           min_contrast: float = 0.0, tries: int = 5) -> None:
    """Fill ``mask`` of ``canvas`` in place with a fresh random texture.

    The texture is sampled at the mask's box size, so gradients and stripes
    span the object rather than the whole image (also much cheaper). With
    ``min_contrast`` > 0 it is re-drawn up to ``tries`` times until its mean
    colour differs from the covered pixels by that much in some channel.
    """
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = mask[y0:y1, x0:x1]
    region = canvas[y0:y1, x0:x1]  # a view: writes go to canvas
    for _ in range(tries):
        tex = random_texture(rng, y1 - y0, x1 - x0)
        if min_contrast <= 0 or \
                np.abs(tex[crop].mean(0) - region[crop].mean(0)).max() > min_contrast:
            break
    region[crop] = tex[crop]


def generate_image(rng: np.random.Generator,
                   height: int,
                   width: int,
                   num_objects: Tuple[int, int] = (3, 8),
                   min_visible: float = 0.35,
                   min_area: int = 30,
                   overlap_prob: float = 0.5,
                   num_clutter: int = 3,
                   max_tries: int = 30) -> Tuple[np.ndarray, List[Dict]]:
    """Generate one image and its instances.

    Objects are painted one after another. A candidate placement is rejected
    (and re-sampled) when it would leave an already painted object with less
    than ``min_visible`` of its area, or less than ``min_area`` pixels,
    visible; so every painted object stays annotated and no unannotated
    fragments are left in the image. Objects that cannot be placed within
    ``max_tries`` are skipped.

    Args:
        rng (np.random.Generator): Random stream (the only source of
            randomness, which makes the output reproducible).
        height (int): Image height.
        width (int): Image width.
        num_objects (tuple[int, int]): Inclusive range of objects to attempt.
        min_visible (float): Minimum visible fraction of every object.
        min_area (int): Minimum visible pixels of every object.
        overlap_prob (float): Probability of centring a new object on a
            visible pixel of an existing one, to make occlusion common.
        num_clutter (int): Max number of unannotated line/arc distractors.
        max_tries (int): Placement attempts per object.

    Returns:
        tuple: ``(image, instances)``; ``image`` is ``(H, W, 3)`` uint8 BGR and
        each instance is ``dict(label=int, mask=bool array, full_mask=bool
        array, full_area=int)`` with ``mask`` the visible part and
        ``full_mask`` the whole (in-image) shape.
    """
    canvas = random_texture(rng, height, width)

    # Unannotated clutter (thin lines and open arcs) drawn with object-like
    # textures: "anything with an edge is an object" must not hold.
    for _ in range(int(rng.integers(0, num_clutter + 1))):
        m = np.zeros((height, width), np.uint8)
        thickness = int(rng.integers(1, 4))
        if rng.random() < 0.5:
            p0 = rng.uniform(0, [width, height]).astype(int)
            p1 = rng.uniform(0, [width, height]).astype(int)
            cv2.line(m, tuple(map(int, p0)), tuple(map(int, p1)), 1, thickness)
        else:
            c = tuple(map(int, rng.uniform(0, [width, height])))
            axes = tuple(map(int, rng.uniform(10, max(11, min(height, width) / 3), size=2)))
            start = float(rng.uniform(0, 360))
            cv2.ellipse(m, c, axes, float(rng.uniform(0, 180)), start,
                        start + float(rng.uniform(60, 200)), 1, thickness)
        _paint(rng, canvas, m > 0)

    owner = np.full((height, width), -1, np.int32)
    instances: List[Dict] = []
    n_target = int(rng.integers(num_objects[0], num_objects[1] + 1))
    for _ in range(n_target):
        label = int(rng.integers(0, len(CLASSES)))
        rings, unit_area = unit_shape(rng, label)
        target = sample_target_area(rng, height, width)
        scale = math.sqrt(target / unit_area)
        placed = None
        for _try in range(max_tries):
            if instances and rng.random() < overlap_prob:
                # Centre on a visible pixel of an existing object (plus
                # jitter) so that partial occlusion is frequent.
                ys, xs = np.nonzero(owner >= 0)
                k = int(rng.integers(0, len(ys)))
                center = (xs[k] + rng.normal(0, scale * 0.5), ys[k] + rng.normal(0, scale * 0.5))
            else:
                center = tuple(rng.uniform(0, [width, height]))
            mask = render_shape(rings, center, scale, height, width)
            full_area = int(mask.sum())
            # Allow truncation by the image border, but keep most of it.
            if full_area < max(min_area, 0.6 * target):
                continue
            ok = True
            for j, inst in enumerate(instances):
                vis = int(np.count_nonzero((owner == j) & ~mask))
                if vis < max(min_area, min_visible * inst['full_area']):
                    ok = False
                    break
            if ok:
                placed = (mask, full_area)
                break
        if placed is None:
            continue
        mask, full_area = placed
        # Fill colour/texture from the background distribution, re-drawn a
        # few times if it is nearly identical to what it covers: objects
        # should be hard, not invisible.
        _paint(rng, canvas, mask, min_contrast=30.0)
        owner[mask] = len(instances)
        instances.append(dict(label=label, full_area=full_area, full_mask=mask))

    # The owner map already holds the visible masks; visible_masks() is the
    # reference definition, kept in sync by the tests.
    for j, inst in enumerate(instances):
        inst['mask'] = owner == j

    # Slight blur anti-aliases the hard-edged rasterisation (looks like a
    # camera, and keeps masks from being recoverable by exact pixel edges),
    # then sensor noise.
    canvas = cv2.GaussianBlur(canvas, (0, 0), sigmaX=float(rng.uniform(0.5, 1.0)))
    canvas += rng.normal(0, rng.uniform(2, 8), size=canvas.shape).astype(np.float32)
    image = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    return image, instances


def encode_mask(mask: np.ndarray, mask_format: str = 'rle') -> Union[Dict, List[List[float]]]:
    """Encode a visible mask as a COCO ``segmentation``.

    ``rle`` (default) is exact. ``polygon`` traces outlines with
    ``cv2.findContours``; polygons through pixel centres lose about half of
    the boundary pixels when rasterised back (IoU ~0.6-0.8 for small objects)
    and cannot express holes, so masks with holes (rings, or objects with an
    occluder in their middle) fall back to RLE even in polygon mode.
    """
    m = np.asfortranarray(mask.astype(np.uint8))
    if mask_format == 'polygon':
        contours, hierarchy = cv2.findContours(m.copy(), cv2.RETR_CCOMP,
                                               cv2.CHAIN_APPROX_SIMPLE)
        has_hole = hierarchy is not None and bool((hierarchy[0][:, 3] >= 0).any())
        polys = [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]
        if polys and not has_hole:
            return polys
    elif mask_format != 'rle':
        raise ValueError(f'unknown mask_format {mask_format!r}')
    rle = mask_utils.encode(m)
    rle['counts'] = rle['counts'].decode('ascii')
    return rle


def segmentation_to_rle(segm: Union[Dict, List], height: int, width: int) -> Dict:
    """Convert any COCO ``segmentation`` to a single compressed RLE."""
    if isinstance(segm, list):
        return mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
    if isinstance(segm['counts'], list):
        return mask_utils.frPyObjects(segm, height, width)
    return segm


def generate_split(out_dir: str,
                   split: str,
                   num_images: int,
                   size: Tuple[int, int] = (320, 320),
                   seed: int = 0,
                   mask_format: str = 'rle',
                   ext: str = 'jpg',
                   verbose: bool = True,
                   **image_kwargs) -> Dict:
    """Generate one split and write its images and annotation file.

    Args:
        out_dir (str): Dataset root.
        split (str): ``train``, ``val`` or ``test``.
        num_images (int): Number of images.
        size (tuple[int, int]): ``(width, height)``.
        seed (int): Dataset seed; each image uses ``(seed, split, index)``.
        mask_format (str): ``rle`` or ``polygon`` (see :func:`encode_mask`).
        ext (str): Image extension, ``jpg`` or ``png``.
        verbose (bool): Print progress and statistics.
        **image_kwargs: Forwarded to :func:`generate_image`.

    Returns:
        dict: The COCO annotation dict that was written.
    """
    width, height = size
    img_dir = osp.join(out_dir, split)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    images, annotations = [], []
    t0 = time.time()
    for idx in range(num_images):
        # Independent stream per image: prefixes are stable across --num-*.
        rng = np.random.default_rng([seed, SPLIT_IDS[split], idx])
        image, instances = generate_image(rng, height, width, **image_kwargs)
        file_name = f'{idx:06d}.{ext}'
        params = [cv2.IMWRITE_JPEG_QUALITY, 92] if ext == 'jpg' else []
        cv2.imwrite(osp.join(img_dir, file_name), image, params)
        img_id = idx + 1
        images.append(dict(id=img_id, file_name=file_name, height=height, width=width))
        for inst in instances:
            segm = encode_mask(inst['mask'], mask_format)
            # Area and box come from the encoded segmentation itself, so the
            # json is self-consistent whatever the mask format.
            rle = segmentation_to_rle(segm, height, width)
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=img_id,
                    category_id=inst['label'] + 1,
                    segmentation=segm,
                    area=float(mask_utils.area(rle)),
                    bbox=[float(v) for v in mask_utils.toBbox(rle)],
                    iscrowd=0))
        if verbose and ((idx + 1) % 50 == 0 or idx + 1 == num_images):
            print(f'[{split}] {idx + 1}/{num_images} images, {len(annotations)} instances, '
                  f'{time.time() - t0:.1f}s', flush=True)
    coco = dict(
        info=dict(description='mmifr synthetic shapes', version='1.0', year=2024,
                  contributor='mmifr', seed=seed, split=split),
        licenses=[],
        images=images,
        annotations=annotations,
        categories=[dict(id=i + 1, name=n, supercategory='shape') for i, n in enumerate(CLASSES)])
    with open(osp.join(out_dir, 'annotations', f'instances_{split}.json'), 'w') as f:
        json.dump(coco, f)
    if verbose:
        print(format_stats(coco), flush=True)
    return coco


def format_stats(coco: Dict) -> str:
    """Summarise instances per class and per COCO area range."""
    per_cls = {c: 0 for c in CLASSES}
    per_rng = {k: 0 for k in COCO_AREA_RANGES}
    for a in coco['annotations']:
        per_cls[CLASSES[a['category_id'] - 1]] += 1
        for k, (lo, hi) in COCO_AREA_RANGES.items():
            if lo <= a['area'] < hi:
                per_rng[k] += 1
    n_img = max(1, len(coco['images']))
    return (f'  {len(coco["annotations"])} instances in {len(coco["images"])} images '
            f'({len(coco["annotations"]) / n_img:.1f}/img); per class {per_cls}; '
            f'per area {per_rng}')


def make_dataset(out_dir: str = 'data/shapes',
                 num_train: int = 200,
                 num_val: int = 50,
                 size: Tuple[int, int] = (320, 320),
                 seed: int = 0,
                 **kwargs) -> Dict[str, Dict]:
    """Generate the ``train`` and ``val`` splits under ``out_dir``."""
    return {
        split: generate_split(out_dir, split, n, size=size, seed=seed, **kwargs)
        for split, n in (('train', num_train), ('val', num_val))
    }


# --------------------------------------------------------------------------
# Visualisation
# --------------------------------------------------------------------------
def visualize(out_dir: str, split: str = 'train', num: int = 2,
              save_path: Optional[str] = None) -> str:
    """Draw the first ``num`` images of a split with their annotations.

    Masks are decoded from the written json (not from generator internals),
    so the picture checks the files a model will actually be trained on.
    Each panel pair is the raw image and the image with filled masks,
    outlines, boxes and class names.

    Returns:
        str: Path of the PNG written (default ``<out_dir>/vis_<split>.png``).
    """
    from pycocotools.coco import COCO
    coco = COCO(osp.join(out_dir, 'annotations', f'instances_{split}.json'))
    rows = []
    for img_id in sorted(coco.getImgIds())[:num]:
        info = coco.loadImgs(img_id)[0]
        img = cv2.imread(osp.join(out_dir, split, info['file_name']))
        over = img.copy()
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img_id)):
            m = coco.annToMask(ann).astype(bool)
            color = np.array(PALETTE[ann['category_id'] - 1][::-1], np.float32)
            over[m] = (0.45 * over[m] + 0.55 * color).astype(np.uint8)
        scale = 2  # upsample so thin outlines and labels stay legible
        over = cv2.resize(over, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img_id)):
            m = coco.annToMask(ann)
            m = cv2.resize(m, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
            color = tuple(int(c) for c in PALETTE[ann['category_id'] - 1][::-1])
            cs, _ = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(over, cs, -1, (255, 255, 255), 1)
            x, y, w, h = [int(round(v * scale)) for v in ann['bbox']]
            cv2.rectangle(over, (x, y), (x + w - 1, y + h - 1), color, 1)
            cv2.putText(over, f'{CLASSES[ann["category_id"] - 1]} {int(ann["area"])}',
                        (x + 2, max(10, y + 11)), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        (255, 255, 255), 1, cv2.LINE_AA)
        raw = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        rows.append(np.concatenate([raw, np.full((raw.shape[0], 8, 3), 255, np.uint8), over],
                                   axis=1))
    canvas = np.concatenate(
        [r for row in rows for r in (row, np.full((8, row.shape[1], 3), 255, np.uint8))][:-1],
        axis=0)
    save_path = save_path or osp.join(out_dir, f'vis_{split}.png')
    cv2.imwrite(save_path, canvas)
    return save_path


def parse_size(text: str) -> Tuple[int, int]:
    """Parse ``"320"`` or ``"WxH"`` into ``(width, height)``."""
    parts = text.lower().split('x')
    if len(parts) == 1:
        return int(parts[0]), int(parts[0])
    if len(parts) == 2:
        return int(parts[0]), int(parts[1])
    raise argparse.ArgumentTypeError(f'bad size {text!r}, expected N or WxH')
