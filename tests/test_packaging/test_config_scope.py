"""Config inheritance from outside the repository: the ``mmifr::`` scope and new-style configs.

In-process and against the development install (``pip install -e .``, what ``make setup`` does);
``test_wheel_install.py`` repeats the end-to-end part against a wheel in a fresh environment.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope

from mmifr import registry as mmifr_registry

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SITE_PACKAGES = [p for p in sys.path if p.endswith('site-packages')]


def _run(code, *args, cwd, env=None):
    return subprocess.run([sys.executable, *args, '-c', code], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def _bare_env():
    """``python -S`` with the pinned stack importable: no ``site``, so no ``.pth`` hooks."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO_ROOT, *SITE_PACKAGES]))
    return env


_PROBE = ('import sys\n'
          'from mmengine.config.utils import MODULE2PACKAGE\n'
          'from mmengine.config import config\n'
          "print('scope:', 'mmifr' in MODULE2PACKAGE)\n"
          "print('path:', config.get_installed_path('mmifr'))\n"
          "print('mmifr imported:', 'mmifr' in sys.modules)\n")


def test_without_the_hook_mmengine_rejects_the_scope(tmp_path):
    """The baseline the hook fixes, measured, so that this test notices when mmengine changes."""
    proc = _run(_PROBE, '-S', cwd=str(tmp_path), env=_bare_env())
    assert proc.returncode == 0, proc.stderr
    assert 'scope: False' in proc.stdout


def test_hook_patches_mmengine_lazily_without_importing_mmifr(tmp_path):
    code = ('import sys, _mmifr_config_scope\n'
            '_mmifr_config_scope.install()\n'
            "assert 'mmengine' not in sys.modules, 'install() must not import mmengine'\n" + _PROBE)
    proc = _run(code, '-S', cwd=str(tmp_path), env=_bare_env())
    assert proc.returncode == 0, proc.stderr
    assert 'scope: True' in proc.stdout
    assert 'mmifr imported: False' in proc.stdout
    # The real package folder, even where the distribution's metadata lies elsewhere
    # (editable installs keep it in site-packages).
    path = proc.stdout.split('path: ')[1].splitlines()[0]
    assert osp.isfile(osp.join(path, '__init__.py')), path


def test_install_patches_modules_already_imported(tmp_path):
    code = ('import mmengine.config, _mmifr_config_scope\n'
            '_mmifr_config_scope.install()\n' + _PROBE)
    proc = _run(code, '-S', cwd=str(tmp_path), env=_bare_env())
    assert proc.returncode == 0, proc.stderr
    assert 'scope: True' in proc.stdout


def test_installed_pth_registers_the_scope_at_startup(tmp_path):
    """``pip install -e .`` put ``mmifr-config-scope.pth`` into site-packages."""
    assert any(osp.isfile(osp.join(p, 'mmifr-config-scope.pth')) for p in SITE_PACKAGES), (
        'mmifr-config-scope.pth is not installed: reinstall mmifr (make setup, or '
        'pip install --no-deps --no-build-isolation -e .)')
    proc = _run(_PROBE, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert 'scope: True' in proc.stdout
    assert 'mmifr imported: False' in proc.stdout


def test_editable_install_links_mim_folder():
    mim = osp.join(REPO_ROOT, 'mmifr', '.mim')
    for name in ('configs', 'tools', 'model-index.yml'):
        assert osp.realpath(osp.join(mim, name)) == osp.join(REPO_ROOT, name)


def test_wrapped_get_installed_path_leaves_other_packages_alone():
    from mmengine.utils import get_installed_path
    assert getattr(get_installed_path, '_mmifr_patched', False)
    assert osp.isdir(get_installed_path('mmdet'))
    assert osp.isfile(osp.join(get_installed_path('mmifr'), 'registry.py'))


@pytest.mark.parametrize('route', ['scope', 'new_style'])
def test_user_config_outside_repo_inherits_mmifr(tmp_path, user_config_writer, route):
    path = user_config_writer(str(tmp_path), route)
    cfg = Config.fromfile(path)
    head = cfg.model.roi_head.mask_head
    head_type = head.type if isinstance(head.type, str) else head.type.__name__
    assert head_type == 'IFRConvFCMaskHead'
    # The user's changes merge into mmifr's head settings, which stay.
    assert head.num_classes == 2 and head.in_channels == 32
    assert head.ifr_cfg.block.mid_channels == 32
    assert head.ifr_cfg.solver.solver == 'broyden'
    assert len(cfg.custom_hooks) == 3


def test_scope_tagged_hooks_build_in_the_mmifr_registries(tmp_path, user_config_writer):
    """mmengine tags the IFR hooks of an ``mmifr::`` base with ``_scope_='mmifr'``."""
    from mmengine.registry import HOOKS
    cfg = Config.fromfile(user_config_writer(str(tmp_path), 'scope'))
    assert [h.get('_scope_') for h in cfg.custom_hooks] == ['mmifr'] * 3
    init_default_scope('mmdet')
    hooks = [HOOKS.build(h) for h in cfg.custom_hooks]
    assert [type(h).__name__ for h in hooks] == [
        'IFRSolverStatsHook', 'IFRUnrollWarmupHook', 'IFRAuxLossHook'
    ]
    assert mmifr_registry.HOOKS.parent is __import__('mmdet.registry').registry.HOOKS


@pytest.mark.parametrize('route', ['scope', 'new_style'])
def test_user_config_builds_and_runs_forward(tmp_path, user_config_writer, route):
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    cfg = Config.fromfile(user_config_writer(str(tmp_path), route))
    # Under the scope a runner would set; a fresh DefaultScope instance per test.
    DefaultScope.get_instance(f'test-{route}-{tmp_path.name}', scope_name='mmdet')
    model = MODELS.build(cfg.model).eval()
    assert type(model.roi_head.mask_head).__name__ == 'IFRConvFCMaskHead'
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                         scale_factor=(1.0, 1.0)))
    with torch.no_grad():
        results = model.predict(torch.rand(1, 3, 64, 64), [sample])
    assert len(results) == 1 and 'pred_instances' in results[0]


def _normalise(value, key=None):
    """Config values with types as bare names (no module path, no ``_scope_``)."""
    if isinstance(value, dict):
        return {k: _normalise(v, k) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return type(value)(_normalise(v) for v in value)
    if key in ('type', 'dataset_type'):
        # to_dict() writes a lazily imported class as its import path,
        # 'mmdet.models.RPNHead'; mmcv's 'BN' is torch's BatchNorm2d, which mmdet's new-style
        # configs name directly.
        name = value.rsplit('.', 1)[-1] if isinstance(value, str) else value.__name__
        return {'BN': 'BatchNorm2d'}.get(name, name)
    return value


def test_new_style_config_equals_the_classic_one():
    classic = Config.fromfile(osp.join(REPO_ROOT, 'configs/ifr/mask_rcnn_r50_ifr_1x.py'))
    new = Config.fromfile(osp.join(REPO_ROOT, 'mmifr/configs/ifr/mask_rcnn_r50_ifr_1x.py'))
    classic = _normalise(classic.to_dict())
    new = _normalise(new.to_dict())
    # Only the classic form needs custom_imports; the new form imports mmifr's classes itself.
    classic.pop('custom_imports')
    assert sorted(classic) == sorted(new)
    for key in classic:
        assert classic[key] == new[key], key


@pytest.mark.slow
@pytest.mark.parametrize('entry_point', ['mmifr', 'mmdet'])
@pytest.mark.parametrize('route', ['scope', 'new_style'])
def test_train_one_iteration_from_outside_the_repo(tmp_path, tiny_coco_factory,
                                                   user_train_config_writer, route, entry_point):
    """The checkout's ``tools/train.py`` and mmdet's own, against the editable install."""
    import mmdet
    dataset = tiny_coco_factory(str(tmp_path / 'data'), num_images=2)
    config = user_train_config_writer(str(tmp_path), route, dataset)
    script = (osp.join(REPO_ROOT, 'tools', 'train.py') if entry_point == 'mmifr' else osp.join(
        osp.dirname(mmdet.__file__), '.mim', 'tools', 'train.py'))
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    env.pop('PYTHONPATH', None)
    proc = subprocess.run([sys.executable, script, config, '--work-dir', str(tmp_path / 'work')],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert osp.isfile(tmp_path / 'work' / 'iter_1.pth')
    assert 'ifr/fwd_nstep' in proc.stdout + proc.stderr
