"""New-style (pure Python) configs of mmifr, inherited with ``mmengine.config.read_base()``.

A user config anywhere, with mmifr installed (wheel or editable)::

    from mmengine.config import read_base

    with read_base():
        from mmifr.configs.ifr.mask_rcnn_r50_ifr_1x import *

    model.update(dict(roi_head=dict(mask_head=dict(num_classes=3))))

These are config files, not modules meant to be imported by code: mmengine parses them, turning
their imports into lazy objects. They mirror ``configs/ifr/`` (the classic configs, which inherit
mmdet's through ``mmdet::``). mmdet 3.3 keeps its own new-style configs in its repository only
(the mmdet 3.3.0 wheel and sdist do not carry ``mmdet/configs``), so ``_base_/`` here holds the
mmdet 3.3 Mask R-CNN R50-FPN 1x COCO settings, value for value; a test checks that both forms
give the same config.
"""
