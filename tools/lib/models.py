"""Detectors and data of the tools, built from configs.

:func:`build_detector` is the one model loader of the analysis and benchmark
tools; ``tools/benchmark_model_zoo.py`` resolves its config names with
:func:`resolve_config`.
"""
import copy
import os.path as osp
from typing import Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from torch import nn
from torch.utils.data import DataLoader, Subset

import mmdet
from mmdet.registry import DATASETS, MODELS
from mmifr.engine.hooks import find_refiners

#: The folder holding ``tools/`` and ``configs/``: the checkout, or ``mmifr/.mim`` where a wheel
#: installs them. Taken from this file, which ships with the tools, not from the ``mmifr``
#: package, which a wheel puts elsewhere (site-packages).
TOOLS_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def resolve_path(path: str) -> str:
    """A path a tool is given or defaults to, as an absolute path.

    Args:
        path: An absolute path, or a relative one: taken from the current
            directory if it exists there, else from :data:`TOOLS_ROOT` (rows
            files and the tools' defaults name files relative to the root).

    Returns:
        str: The absolute path (not checked to exist).
    """
    # osp.join drops TOOLS_ROOT for an absolute path.
    return osp.abspath(path if osp.exists(path) else osp.join(TOOLS_ROOT, path))


def resolve_config(path: str) -> str:
    """The config file a benchmark argument names, as an absolute path.

    Args:
        path: ``mmdet::<x>.py`` (the file inside the installed mmdet), or a
            path as :func:`resolve_path` takes it.

    Returns:
        str: The absolute path (not checked to exist for ``mmdet::`` or
        root-relative names).
    """
    if path.startswith('mmdet::'):
        return osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', path[len('mmdet::'):])
    return resolve_path(path)


#: ``options`` of :func:`build_detector` for random weights without a download: the backbone's
#: ``init_cfg`` (a pretrained checkpoint in most configs) is dropped.
NO_PRETRAINED_BACKBONE = {'model.backbone.init_cfg': None}


def build_detector(config: str,
                   options: Optional[dict] = None,
                   checkpoint: Optional[str] = None,
                   strict: bool = False) -> Tuple[nn.Module, Config]:
    """Build a detector in eval mode, with a checkpoint's or initial weights.

    The one model loader of the tools. The refiners' unrolled warm-up phase
    is switched off: a tool measures the implicit solve a trained model runs.
    As mmdet's ``init_detector``, it sets ``model.cfg`` and
    ``model.dataset_meta`` (the checkpoint's, else the test dataset's
    ``metainfo``).

    Args:
        config: A config name, see :func:`resolve_config`.
        options: Dotted-key overrides merged into the config (may be empty),
            e.g. :data:`NO_PRETRAINED_BACKBONE`.
        checkpoint: Weights to load; ``None`` runs ``init_weights()``.
        strict: Fail on a checkpoint whose keys do not match the model's.

    Returns:
        tuple: The model (``eval()``) and its merged config.
    """
    cfg = Config.fromfile(resolve_config(config))
    if options:
        cfg.merge_from_dict(options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    meta = {}
    if checkpoint:
        loaded = load_checkpoint(
            model, checkpoint, map_location='cpu', strict=strict, logger='silent')
        meta = loaded.get('meta', {}).get('dataset_meta') or {}
    else:
        model.init_weights()
    model.cfg = cfg
    model.dataset_meta = meta or dict(
        cfg.get('test_dataloader', {}).get('dataset', {}).get('metainfo') or {})
    for refiner in find_refiners(model).values():
        refiner.set_unroll_warmup(None)
    return model.eval(), cfg


def build_loader(cfg: Config, num: Optional[int], dataset_cfg: Optional[dict] = None,
                 batch_size: int = 1) -> DataLoader:
    """An unshuffled loader of the first ``num`` samples of a dataset.

    Args:
        cfg: The config whose test dataset is used unless ``dataset_cfg``
            is given.
        num: Number of samples; ``None`` for all of them.
        dataset_cfg: A dataset config to build instead.
        batch_size: Samples per batch.

    Returns:
        DataLoader: Batches as mmengine's ``pseudo_collate`` makes them
        (dicts of lists), ready for a data preprocessor.
    """
    dataset = DATASETS.build(dataset_cfg or cfg.test_dataloader.dataset)
    if num is not None:
        dataset = Subset(dataset, range(min(num, len(dataset))))
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=pseudo_collate)


def _without_random_flip(pipeline: list) -> list:
    # Every side of a comparison must see the same pixels.
    return [t for t in pipeline if t['type'] != 'RandomFlip']


def fruits_dataset(cfg: Config, root: str, train: bool) -> dict:
    """The fruits & nuts photos, with ``cfg``'s pipelines (no random flip).

    Args:
        cfg: Config whose ``train_pipeline`` / ``test_pipeline`` are used.
        root: The dataset folder (``images/``, ``annotations_{train,val}.json``).
        train: The training split (images without objects filtered out)
            rather than the validation split.

    Returns:
        dict: A ``CocoDataset`` config.
    """
    pipeline = _without_random_flip(
        copy.deepcopy(cfg.train_pipeline if train else cfg.test_pipeline))
    return dict(
        type='CocoDataset',
        data_root=osp.join(root, ''),
        ann_file='annotations_val.json' if not train else 'annotations_train.json',
        data_prefix=dict(img='images/'),
        metainfo=dict(classes=('date', 'fig', 'hazelnut')),
        filter_cfg=dict(filter_empty_gt=True, min_size=4) if train else None,
        test_mode=not train,
        pipeline=pipeline)


def shapes_dataset(cfg: Config, root: str, train: bool, classes: Sequence[str],
                   scale: Optional[Tuple[int, int]] = None) -> dict:
    """A dataset of ``tools/dataset_converters/make_shapes_dataset.py`` with ``cfg``'s pipelines.

    What a machine without the configs' own data measures on (the GPU
    machine: no COCO, no fruits & nuts): generated images at any size.

    Args:
        cfg: Config whose ``train_pipeline`` / ``test_pipeline`` are used
            (random flip dropped).
        root: The generated dataset (``annotations/instances_{train,val}.json``,
            ``train/``, ``val/``).
        train: The training split rather than the validation split.
        classes: The generator's class names.
        scale: ``(w, h)`` for every ``Resize`` of the pipeline; ``None`` keeps
            the config's (1333x800 for the COCO configs).

    Returns:
        dict: A ``CocoDataset`` config.
    """
    split = 'train' if train else 'val'
    pipeline = _without_random_flip(
        copy.deepcopy(cfg.train_pipeline if train else cfg.test_pipeline))
    if scale is not None:
        for step in pipeline:
            if step['type'] == 'Resize':
                step['scale'] = tuple(scale)
    return dict(
        type='CocoDataset',
        data_root=osp.join(root, ''),
        ann_file=f'annotations/instances_{split}.json',
        data_prefix=dict(img=f'{split}/'),
        metainfo=dict(classes=tuple(classes)),
        filter_cfg=dict(filter_empty_gt=True, min_size=4) if train else None,
        test_mode=not train,
        pipeline=pipeline)


def config_dataset(cfg: Config, train: bool) -> dict:
    """The config's own training (no random flip) or test dataset config."""
    ds = copy.deepcopy((cfg.train_dataloader if train else cfg.test_dataloader).dataset)
    if train:
        ds.pipeline = _without_random_flip(ds.pipeline)
    return ds
