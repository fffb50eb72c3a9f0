"""Helpers of the packaging tests: user configs that inherit mmifr's, written outside the repo.

Each ``USER_CONFIGS`` entry is one supported way for a config outside the repository to inherit
mmifr's Mask R-CNN R50 IFR config, shrunk (ResNet-18, 32 channels, no pretrained weights) so that
building the model and one forward take seconds on a CPU:

- ``scope``: a classic config with ``_base_ = 'mmifr::ifr/mask_rcnn_r50_ifr_1x.py'``;
- ``new_style``: a pure-Python config with ``read_base()`` and
  ``from mmifr.configs.ifr.mask_rcnn_r50_ifr_1x import *``.
"""
import os.path as osp

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

_SHRINK = '''\
dict(
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, fc_out_channels=64, num_classes=2),
        mask_roi_extractor=dict(out_channels=32),
        mask_head=dict(in_channels=32, conv_out_channels=32, num_classes=2,
                       ifr_cfg=dict(block=dict(mid_channels=32)))),
    test_cfg=dict(rpn=dict(nms_pre=100, max_per_img=50), rcnn=dict(max_per_img=10)))'''

USER_CONFIGS = {
    'scope': ("# A user config inheriting mmifr's by the mmifr:: scope.\n"
              "_base_ = 'mmifr::ifr/mask_rcnn_r50_ifr_1x.py'\n"
              f'model = {_SHRINK}\n'),
    'new_style': ("# A user config inheriting mmifr's new-style config.\n"
                  'from mmengine.config import read_base\n\n'
                  'with read_base():\n'
                  '    from mmifr.configs.ifr.mask_rcnn_r50_ifr_1x import *  # noqa\n\n'
                  f'model.update({_SHRINK})  # noqa: F405\n'),
}


def write_user_config(directory: str, route: str) -> str:
    """Write the user config of ``route`` (a key of ``USER_CONFIGS``) and return its path."""
    if route not in USER_CONFIGS:
        raise KeyError(f'unknown route {route!r}; known: {sorted(USER_CONFIGS)}')
    path = osp.join(directory, f'user_{route}.py')
    with open(path, 'w') as f:
        f.write(USER_CONFIGS[route])
    return path


@pytest.fixture(scope='session')
def user_config_writer():
    """:func:`write_user_config`, for tests (``tests/`` is not a package)."""
    return write_user_config


# Training on a tiny COCO-format dataset for one iteration, no validation: what a user config
# adds to run with `tools/train.py` (mmifr's, mmdet's or `mim train`). One overlay per syntax.
_TRAIN_SCOPE = '''\
_base_ = './user_scope.py'
img_scale = (64, 64)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True),
    dataset=dict(data_root={data_root!r}, ann_file={ann_file!r},
                 data_prefix=dict(img={img_prefix!r}), metainfo=dict(classes={classes!r}),
                 filter_cfg=dict(filter_empty_gt=True, min_size=4), pipeline=train_pipeline))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=1, val_interval=100)
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = test_cfg = test_evaluator = None
param_scheduler = []
default_hooks = dict(checkpoint=dict(interval=1, by_epoch=False), logger=dict(interval=1),
                     visualization=dict(_delete_=True, type='DetVisualizationHook'))
log_processor = dict(by_epoch=False)
'''

_TRAIN_NEW_STYLE = '''\
from mmengine.config import read_base

with read_base():
    from .user_new_style import *  # noqa

from mmcv.transforms import LoadImageFromFile
from mmdet.datasets.transforms import LoadAnnotations, PackDetInputs, Resize
from mmengine.dataset.sampler import InfiniteSampler
from mmengine.runner.loops import IterBasedTrainLoop

train_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations, with_bbox=True, with_mask=True),
    dict(type=Resize, scale=(64, 64), keep_ratio=True),
    dict(type=PackDetInputs),
]
train_dataloader.update(dict(  # noqa: F405
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(type=InfiniteSampler, shuffle=True),
    dataset=dict(data_root={data_root!r}, ann_file={ann_file!r},
                 data_prefix=dict(img={img_prefix!r}), metainfo=dict(classes={classes!r}),
                 filter_cfg=dict(filter_empty_gt=True, min_size=4), pipeline=train_pipeline)))
train_cfg = dict(type=IterBasedTrainLoop, max_iters=1, val_interval=100)
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = test_cfg = test_evaluator = None
param_scheduler = []
default_hooks.update(dict(checkpoint=dict(interval=1, by_epoch=False),  # noqa: F405
                          logger=dict(interval=1)))
log_processor.update(dict(by_epoch=False))  # noqa: F405
'''


def write_user_train_config(directory: str, route: str, dataset: dict) -> str:
    """Write a one-iteration training config of ``route`` on ``dataset`` (``make_tiny_coco``).

    The user config of :func:`write_user_config` is written beside it and inherited.
    """
    write_user_config(directory, route)
    template = {'scope': _TRAIN_SCOPE, 'new_style': _TRAIN_NEW_STYLE}[route]
    path = osp.join(directory, f'train_{route}.py')
    with open(path, 'w') as f:
        f.write(template.format(**dataset))
    return path


@pytest.fixture(scope='session')
def user_train_config_writer():
    """:func:`write_user_train_config`, for tests."""
    return write_user_train_config
