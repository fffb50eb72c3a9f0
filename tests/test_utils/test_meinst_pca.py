"""Tests of ``mmifr.utils.meinst_pca`` (the PCA fit behind MEInst) on a tiny COCO set."""
import json

import numpy as np
import torch
from pycocotools import mask as mask_utils

from mmdet.structures.mask import BitmapMasks
from mmifr.models.task_modules import PCAMaskCoder
from mmifr.utils.meinst_pca import fit_pca, iter_box_cropped_masks, reconstruction_iou


def test_crops_are_the_training_targets_crops(tiny_coco):
    with open(tiny_coco['ann_path']) as f:
        data = json.load(f)
    crops = list(iter_box_cropped_masks(tiny_coco['ann_path'], mask_size=12))
    assert sum(len(c) for c in crops) == len(data['annotations'])
    # The first image's first instance, cropped as the mask head would.
    img = data['images'][0]
    ann = [a for a in data['annotations'] if a['image_id'] == img['id']][0]
    rle = mask_utils.frPyObjects(ann['segmentation'], img['height'], img['width'])
    mask = mask_utils.decode(mask_utils.merge(rle))[None]
    x, y, w, h = ann['bbox']
    expected = BitmapMasks(mask, img['height'], img['width']).crop_and_resize(
        np.array([[x, y, x + w, y + h]], dtype=np.float32), (12, 12), np.array([0])).masks[0]
    assert torch.equal(crops[0][0], torch.from_numpy(expected).float())
    # A box-filling shape: most of the crop is foreground.
    assert all(c.flatten(1).mean(1).min() > 0.3 for c in crops)


def test_fit_and_reconstruction_iou(tiny_coco_factory, tmp_path):
    ann = tiny_coco_factory(str(tmp_path), num_images=12, max_objects=3)['ann_path']
    pca = fit_pca(ann, dim=8, mask_size=12)
    assert pca['components'].shape == (8, 144) and pca['num_masks'] > 12
    assert (pca['explained_variance'][:-1] >= pca['explained_variance'][1:]).all()
    coder = PCAMaskCoder(dim=8, mask_size=12)
    coder.load_pca(pca)
    masks = torch.cat(list(iter_box_cropped_masks(ann, 12)))
    good = reconstruction_iou(coder, masks)
    assert good.mean() > 0.8
    # Fewer components reconstruct worse: the IoU measures the fit.
    coarse = PCAMaskCoder(dim=1, mask_size=12)
    coarse.load_pca(fit_pca(ann, dim=1, mask_size=12))
    assert reconstruction_iou(coarse, masks).mean() < good.mean()
