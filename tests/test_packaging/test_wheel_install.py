"""The sdist and wheel carry configs and tools; a wheel installed into a fresh environment works.

One module-scoped build: the sdist of a copy of the checkout (``setuptools.build_meta``, the
backend ``python -m build`` calls), the wheel built from that sdist with ``pip wheel`` (so the
sdist is shown to be complete), installed with ``pip install --no-deps`` into a new venv whose
only link to the pinned stack is a ``.pth`` line naming the development venv's site-packages:
nothing is downloaded, and the development install of mmifr is not visible (``.pth`` files of a
folder added that way are not run, so its editable finder stays off). Every command then runs
from a folder outside the repository.
"""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# Large or generated folders of a checkout that a build must not need.
_SKIP = shutil.ignore_patterns('.git', '.venv', 'work_dirs', 'data', 'build', 'dist', '*.egg-info',
                               '__pycache__', '.pytest_cache', '.mim')
ROUTES = ('scope', 'new_style')


def _run(cmd, cwd, timeout=600, **kwargs):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    env.pop('PYTHONPATH', None)
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          **kwargs)
    assert proc.returncode == 0, f'{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}'
    return proc


@pytest.fixture(scope='module')
def dists(tmp_path_factory):
    """``{'sdist': path, 'wheel': path}`` built from a copy of the checkout."""
    root = tmp_path_factory.mktemp('build')
    src = root / 'src'
    shutil.copytree(REPO_ROOT, src, ignore=_SKIP, symlinks=True)
    out = root / 'dist'
    code = ('import sys; from setuptools import build_meta; '
            'print(build_meta.build_sdist(sys.argv[1]))')
    _run([sys.executable, '-c', code, str(out)], cwd=str(src))
    (sdist, ) = glob.glob(str(out / 'mmifr-*.tar.gz'))
    _run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w',
          str(out), sdist], cwd=str(root))
    (wheel, ) = glob.glob(str(out / 'mmifr-*.whl'))
    return dict(sdist=sdist, wheel=wheel)


@pytest.fixture(scope='module')
def wheel_env(dists, tmp_path_factory):
    """A fresh venv with the wheel installed; returns its interpreter and site-packages."""
    root = tmp_path_factory.mktemp('venv')
    venv = root / 'venv'
    _run([getattr(sys, '_base_executable', sys.executable), '-m', 'venv', '--without-pip',
          str(venv)], cwd=str(root))
    python = str(venv / 'bin' / 'python')
    site = _run([python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                cwd=str(root)).stdout.strip()
    with open(osp.join(site, '_pinned_stack.pth'), 'w') as f:
        f.write(sysconfig.get_paths()['purelib'] + '\n')
    _run([sys.executable, '-m', 'pip', '--python', python, 'install', '--no-deps', '-q',
          '--disable-pip-version-check', dists['wheel']], cwd=str(root))
    return dict(python=python, site=site)


@pytest.fixture(scope='module')
def user_dir(tmp_path_factory, tiny_coco_factory, user_train_config_writer):
    """A folder outside the repository with the user configs and a tiny dataset."""
    directory = tmp_path_factory.mktemp('user')
    dataset = tiny_coco_factory(str(directory / 'data'), num_images=2)
    for route in ROUTES:
        user_train_config_writer(str(directory), route, dataset)
    return directory


def test_sdist_carries_configs_tools_and_the_hook(dists):
    import tarfile
    with tarfile.open(dists['sdist']) as tar:
        names = {n.split('/', 1)[1] for n in tar.getnames() if '/' in n}
    for name in ('configs/ifr/mask_rcnn_r50_ifr_1x.py', 'configs/ifr/_base_/ifr_hooks.py',
                 'tools/train.py', 'tools/test.py', 'model-index.yml', '_mmifr_config_scope.py',
                 'mmifr/configs/ifr/mask_rcnn_r50_ifr_1x.py', 'MANIFEST.in'):
        assert name in names, name


def test_wheel_carries_mim_folder_new_style_configs_and_pth(dists):
    with zipfile.ZipFile(dists['wheel']) as whl:
        names = set(whl.namelist())
        pth = whl.read('mmifr-config-scope.pth').decode()
    for name in ('mmifr/.mim/configs/ifr/mask_rcnn_r50_ifr_1x.py',
                 'mmifr/.mim/configs/ifr/_base_/ifr_runtime.py', 'mmifr/.mim/tools/train.py',
                 'mmifr/.mim/tools/test.py', 'mmifr/.mim/model-index.yml',
                 'mmifr/configs/ifr/mask_rcnn_r50_ifr_1x.py',
                 'mmifr/configs/_base_/models/mask_rcnn_r50_fpn.py', '_mmifr_config_scope.py',
                 'mmifr/.mim/tools/__init__.py', 'mmifr/.mim/tools/lib/models.py',
                 'mmifr/.mim/tools/lib/benchmark/released_solver.py'):
        assert name in names, name
    assert pth.startswith('import _mmifr_config_scope;')
    assert not any('__pycache__' in n for n in names)
    # The analysis code ships with the tools, not in the package.
    assert not any(n.startswith(('mmifr/utils/benchmark', 'tools/')) for n in names)


def test_import_mmifr_from_the_wheel(wheel_env, user_dir):
    code = ('import json, mmifr, _mmifr_config_scope\n'
            'from mmengine.config.utils import MODULE2PACKAGE\n'
            'from mmengine.utils import get_installed_path\n'
            'print(json.dumps(dict(file=mmifr.__file__, scope="mmifr" in MODULE2PACKAGE,'
            ' path=get_installed_path("mmifr"), version=mmifr.__version__)))')
    stdout = _run([wheel_env['python'], '-c', code], cwd=str(user_dir)).stdout
    info = json.loads(stdout.splitlines()[-1])
    assert info['file'].startswith(wheel_env['site']), info
    assert info['path'] == osp.join(wheel_env['site'], 'mmifr')
    assert info['scope']


def test_shipped_tools_import_their_library_and_find_the_shipped_configs(wheel_env, user_dir):
    mim = osp.join(wheel_env['site'], 'mmifr', '.mim')
    for tool in ('benchmark_model_zoo.py', 'analysis_tools/benchmark_ifr_cost.py',
                 'analysis_tools/analyze_convergence.py'):
        _run([wheel_env['python'], osp.join(mim, 'tools', tool), '--help'], cwd=str(user_dir))
    # A root-relative config name, from a folder without it: the copy the wheel ships.
    code = (f'import sys; sys.path.insert(0, {mim!r})\n'
            'from tools.lib.models import resolve_config\n'
            "print(resolve_config('configs/ifr/mask_rcnn_r50_ifr_1x.py'))")
    stdout = _run([wheel_env['python'], '-c', code], cwd=str(user_dir)).stdout
    assert stdout.splitlines()[-1] == osp.join(mim, 'configs', 'ifr', 'mask_rcnn_r50_ifr_1x.py')


@pytest.mark.parametrize('route', ROUTES)
def test_user_config_builds_and_runs_forward(wheel_env, user_dir, route):
    """Without importing mmifr first: the ``.pth`` hook registers ``mmifr::`` at start-up."""
    code = ('import sys, torch\n'
            'from mmengine.config import Config\n'
            'from mmengine.registry import init_default_scope\n'
            f'cfg = Config.fromfile("user_{route}.py")\n'
            'init_default_scope("mmdet")\n'
            'from mmdet.registry import MODELS\n'
            'from mmdet.structures import DetDataSample\n'
            'model = MODELS.build(cfg.model).eval()\n'
            'meta = dict(img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1.0, 1.0))\n'
            'with torch.no_grad():\n'
            '    out = model.predict(torch.rand(1, 3, 64, 64), [DetDataSample(metainfo=meta)])\n'
            'import mmifr\n'
            'print(type(model.roi_head.mask_head).__name__, len(out), mmifr.__file__)\n')
    stdout = _run([wheel_env['python'], '-c', code], cwd=str(user_dir)).stdout
    head, num, path = stdout.split()[-3:]
    assert head == 'IFRConvFCMaskHead' and num == '1'
    assert path.startswith(wheel_env['site'])


def _mmdet_train_script(python, cwd):
    code = ('import mmdet, os.path as p; '
            'print(p.join(p.dirname(mmdet.__file__), ".mim/tools/train.py"))')
    return _run([python, '-c', code], cwd=cwd).stdout.strip()


@pytest.mark.parametrize('entry_point', ['mmifr', 'mmdet'])
@pytest.mark.parametrize('route', ROUTES)
def test_train_one_iteration(wheel_env, user_dir, route, entry_point):
    """mmifr's ``tools/train.py`` as the wheel ships it, and mmdet's own training script."""
    python = wheel_env['python']
    if entry_point == 'mmifr':
        script = osp.join(wheel_env['site'], 'mmifr', '.mim', 'tools', 'train.py')
    else:
        script = _mmdet_train_script(python, str(user_dir))
    work_dir = user_dir / f'work_{route}_{entry_point}'
    proc = _run([python, script, f'train_{route}.py', '--work-dir', str(work_dir)],
                cwd=str(user_dir))
    assert osp.isfile(work_dir / 'iter_1.pth'), proc.stdout[-3000:]
    log = proc.stdout + proc.stderr
    # The IFR head trained: its solver statistics are in the log.
    assert 'ifr/fwd_nstep' in log and 'loss_mask' in log


def test_mim_train_runs_the_shipped_tool(wheel_env, user_dir):
    """``mim train mmifr``, where openmim is installed next to the pinned stack."""
    probe = subprocess.run([wheel_env['python'], '-c', 'import mim'], capture_output=True)
    if probe.returncode != 0:
        pytest.skip('openmim is not installed in the pinned stack (pip install openmim)')
    work_dir = user_dir / 'work_mim'
    _run([wheel_env['python'], '-m', 'mim', 'train', 'mmifr', 'train_scope.py', '--gpus', '0',
          '--work-dir', str(work_dir)], cwd=str(user_dir))
    assert osp.isfile(work_dir / 'iter_1.pth')
