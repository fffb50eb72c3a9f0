"""``tools.lib.models``: config names and dataset configs of the benchmarks."""
import importlib.util
import os.path as osp
import shutil

import pytest
from mmengine.config import Config

from tools.lib import models
from tools.lib.models import TOOLS_ROOT, config_dataset, fruits_dataset, resolve_config

IFR_CONFIG = 'configs/ifr/mask_rcnn_r50_ifr_1x.py'


def test_tools_root_is_the_checkout():
    assert osp.exists(osp.join(TOOLS_ROOT, IFR_CONFIG))
    assert osp.exists(osp.join(TOOLS_ROOT, 'tools', 'analysis_tools', 'benchmark_ifr_cost.py'))


def test_root_relative_names_resolve_in_a_wheel_install(tmp_path, monkeypatch):
    # A wheel ships the tools and configs side by side in <site>/mmifr/.mim; a user runs a tool
    # from a folder of their own. The fallback root must be that .mim folder, not a folder
    # derived from where the mmifr package lives (the site-packages folder in a wheel install,
    # this checkout here).
    mim = tmp_path / 'site' / 'mmifr' / '.mim'
    (mim / 'tools' / 'lib').mkdir(parents=True)
    shutil.copy(models.__file__, mim / 'tools' / 'lib' / 'models.py')
    shipped = mim / IFR_CONFIG
    shipped.parent.mkdir(parents=True)
    shipped.write_text('')
    spec = importlib.util.spec_from_file_location('wheel_models',
                                                  str(mim / 'tools' / 'lib' / 'models.py'))
    wheel_models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wheel_models)
    (tmp_path / 'user').mkdir()
    monkeypatch.chdir(tmp_path / 'user')
    assert wheel_models.resolve_config(IFR_CONFIG) == str(shipped)


def test_mmdet_scope_names_the_installed_mmdet_config():
    path = resolve_config('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py')
    assert osp.isfile(path)
    assert path.endswith(osp.join('.mim', 'configs', 'mask_rcnn', 'mask-rcnn_r50_fpn_1x_coco.py'))


def test_relative_path_from_the_cwd_first_then_from_the_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # Not in the cwd: the repository's file, as an absolute path.
    assert resolve_config(IFR_CONFIG) == osp.join(TOOLS_ROOT, IFR_CONFIG)
    # A file of the same name in the cwd wins.
    local = tmp_path / IFR_CONFIG
    local.parent.mkdir(parents=True)
    local.write_text('')
    assert resolve_config(IFR_CONFIG) == str(local)
    assert osp.isabs(resolve_config('mine.py'))


def test_absolute_path_is_kept_even_if_missing(tmp_path):
    missing = str(tmp_path / 'none.py')
    assert resolve_config(missing) == missing


def test_model_zoo_tool_uses_the_same_function():
    path = osp.join(TOOLS_ROOT, 'tools', 'benchmark_model_zoo.py')
    spec = importlib.util.spec_from_file_location('benchmark_model_zoo_for_test', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.resolve_config is models.resolve_config


@pytest.fixture
def cfg():
    flip = dict(type='RandomFlip', prob=0.5)
    train = [dict(type='LoadImageFromFile'), flip, dict(type='PackDetInputs')]
    test = [dict(type='LoadImageFromFile'), dict(type='PackDetInputs')]
    return Config(
        dict(
            train_pipeline=train,
            test_pipeline=test,
            train_dataloader=dict(dataset=dict(type='CocoDataset', pipeline=train)),
            test_dataloader=dict(dataset=dict(type='CocoDataset', pipeline=test))))


def test_dataset_configs_drop_the_random_flip_and_leave_cfg_alone(cfg):
    for train in (True, False):
        for ds in (fruits_dataset(cfg, '/data/fruits', train), config_dataset(cfg, train)):
            assert [t['type'] for t in ds['pipeline']] == ['LoadImageFromFile', 'PackDetInputs']
    assert [t['type'] for t in cfg.train_pipeline] == [
        'LoadImageFromFile', 'RandomFlip', 'PackDetInputs'
    ]
    assert len(cfg.train_dataloader.dataset.pipeline) == 3


def test_fruits_splits(cfg):
    train, val = (fruits_dataset(cfg, '/data/fruits', split) for split in (True, False))
    assert train['data_root'] == val['data_root'] == '/data/fruits/'
    assert train['ann_file'] == 'annotations_train.json'
    assert val['ann_file'] == 'annotations_val.json'
    assert not train['test_mode'] and val['test_mode']
    assert train['filter_cfg']['filter_empty_gt'] and val['filter_cfg'] is None
