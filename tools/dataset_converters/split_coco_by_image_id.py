# Copyright (c) mmifr contributors. All rights reserved.
"""Split a COCO-format annotation file into train / val files by image id.

Real data stays where it lies (e.g. ``../shared/data/coco_subset``); only the
two annotation files are written, and configs read the images from the
original folder. The split is deterministic: images sorted by id, every
``--every``-th one (the last of each group) goes to val, so val is spread
over the whole id range. Categories are kept whole (the 80 COCO classes even
where some have no instance), so both files share the label space.

Example (what ``configs/ifr/demo/*coco-subset*`` expect)::

    python tools/dataset_converters/split_coco_by_image_id.py \
        ../shared/data/coco_subset/annotations/instances_train2017.json \
        --out-dir data/coco_subset/annotations --every 5
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, Tuple


def split_by_image_id(coco: dict, every: int) -> Tuple[dict, dict]:
    """``(train, val)`` COCO dicts; val holds images ``k * every - 1``
    (0-based rank in sorted ids), train the others."""
    if isinstance(every, bool) or not isinstance(every, int) or every < 2:
        raise ValueError(f'every must be an int >= 2, got {every!r}')
    ids = sorted(img['id'] for img in coco['images'])
    val_ids = {i for rank, i in enumerate(ids) if rank % every == every - 1}
    out: Dict[str, dict] = {}
    for split, keep in (('train', lambda i: i not in val_ids), ('val', lambda i: i in val_ids)):
        out[split] = dict(
            {k: v for k, v in coco.items() if k not in ('images', 'annotations')},
            images=[img for img in coco['images'] if keep(img['id'])],
            annotations=[a for a in coco['annotations'] if keep(a['image_id'])])
    return out['train'], out['val']


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('ann_file', help='COCO-format annotation json')
    parser.add_argument('--out-dir', default='data/coco_subset/annotations')
    parser.add_argument('--every', type=int, default=5,
                        help='every N-th image (by sorted id) goes to val; 5 = 80 / 20')
    return parser.parse_args()


def main():
    args = parse_args()
    with open(args.ann_file) as f:
        coco = json.load(f)
    os.makedirs(args.out_dir, exist_ok=True)
    for split, data in zip(('train', 'val'), split_by_image_id(coco, args.every)):
        path = osp.join(args.out_dir, f'instances_{split}.json')
        with open(path, 'w') as f:
            json.dump(data, f)
        print(f'{path}: {len(data["images"])} images, {len(data["annotations"])} instances')


if __name__ == '__main__':
    main()
