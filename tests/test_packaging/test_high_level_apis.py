"""mmdet's high-level APIs with an IFR model: ``init_detector`` / ``inference_detector`` and
``DetInferencer``, on a tiny random-weight IFR Mask R-CNN inherited from outside the repository.
"""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

pytestmark = pytest.mark.slow

CLASSES = ('rectangle', 'triangle')
# Inference at the images' own size: the COCO pipeline would upscale them to 1333x800.
_TEST_PIPELINE = '''
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                          'scale_factor')),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
'''


@pytest.fixture(scope='module')
def ifr_model(tmp_path_factory, user_config_writer, tiny_coco_factory):
    """``(config path, checkpoint path, image folder)`` of a random-weight IFR model."""
    from mmdet.apis import init_detector
    directory = tmp_path_factory.mktemp('api')
    base = user_config_writer(str(directory), 'scope')
    config = osp.join(directory, 'ifr_infer.py')
    with open(config, 'w') as f:
        f.write(f"_base_ = './{osp.basename(base)}'\n{_TEST_PIPELINE}")
    images = tiny_coco_factory(str(directory / 'data'), num_images=2, size=128)['img_dir']
    model = init_detector(config, checkpoint=None, device='cpu')
    checkpoint = osp.join(directory, 'ifr_random.pth')
    # dataset_meta is where both APIs take the class names (and palette) from.
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dict(classes=CLASSES))),
               checkpoint)
    return config, checkpoint, images


def test_init_detector_and_inference_detector(ifr_model):
    from mmdet.apis import inference_detector, init_detector
    config, checkpoint, images = ifr_model
    model = init_detector(config, checkpoint, device='cpu')
    assert type(model.roi_head.mask_head).__name__ == 'IFRConvFCMaskHead'
    assert model.dataset_meta['classes'] == CLASSES
    files = sorted(glob.glob(osp.join(images, '*.png')))
    results = inference_detector(model, files)
    assert len(results) == len(files)
    for result in results:
        pred = result.pred_instances
        assert pred.masks.shape[1:] == (128, 128)
        assert len(pred.masks) == len(pred.bboxes) == len(pred.scores)


def test_det_inferencer_writes_predictions_and_visualisations(ifr_model, tmp_path):
    from mmdet.apis import DetInferencer
    config, checkpoint, images = ifr_model
    inferencer = DetInferencer(model=config, weights=checkpoint, device='cpu', show_progress=False)
    assert type(inferencer.model.roi_head.mask_head).__name__ == 'IFRConvFCMaskHead'
    out = inferencer(images, out_dir=str(tmp_path), no_save_pred=False, pred_score_thr=0.0)
    assert len(out['predictions']) == 2
    preds = sorted(glob.glob(str(tmp_path / 'preds' / '*.json')))
    vis = sorted(glob.glob(str(tmp_path / 'vis' / '*.png')))
    assert len(preds) == 2 and len(vis) == 2
    with open(preds[0]) as f:
        pred = json.load(f)
    assert {'labels', 'scores', 'bboxes', 'masks'} <= set(pred)


def test_inherited_config_is_what_the_inferencer_builds(ifr_model):
    """The inferencer resolves the ``mmifr::`` base of the user config itself."""
    config, _, _ = ifr_model
    cfg = Config.fromfile(config)
    assert cfg.model.roi_head.mask_head.type == 'IFRConvFCMaskHead'
    assert cfg.test_dataloader.dataset.pipeline[1].scale == (128, 128)
