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
