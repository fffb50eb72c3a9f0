"""``import mmifr`` refuses unsupported mmengine / mmcv / mmdet versions and an mmcv without ops."""
import configparser
import os.path as osp
import subprocess
import sys

import mmcv
import mmdet
import mmengine
import pytest

from mmifr import version_check
from mmifr.version_check import SUPPORTED_VERSIONS, check_dependencies, check_version

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_ranges_are_setup_cfg_install_requires():
    parser = configparser.ConfigParser()
    parser.read(osp.join(REPO, 'setup.cfg'))
    requires = [r.strip() for r in parser['options']['install_requires'].splitlines() if r.strip()]
    assert sorted(requires) == sorted(version_check.supported_range(n) for n in SUPPORTED_VERSIONS)


def test_installed_stack_passes():
    check_dependencies()


@pytest.mark.parametrize('name,version', [('mmcv', '2.0.0rc4'), ('mmcv', '2.1.0'),
                                          ('mmdet', '3.0.0'), ('mmdet', '3.3.0'),
                                          ('mmengine', '0.10.0'), ('mmengine', '0.10.7')])
def test_supported_versions_pass(name, version):
    check_version(name, version)


@pytest.mark.parametrize(
    'name,version',
    [
        ('mmcv', '2.0.0rc3'),  # pre-releases order before the release: rc3 < rc4
        ('mmcv', '2.2.0'),  # the maximum is excluded
        ('mmcv', '1.7.1'),
        ('mmdet', '2.28.2'),
        ('mmdet', '3.4.0'),
        ('mmengine', '0.9.1'),
        ('mmengine', '1.0.0'),
    ])
def test_unsupported_version_names_installed_and_supported(name, version):
    minimum, maximum = SUPPORTED_VERSIONS[name]
    with pytest.raises(AssertionError) as info:
        check_version(name, version)
    message = str(info.value)
    assert f'{name}=={version} is installed' in message
    assert f'{name}>={minimum},<{maximum}' in message


@pytest.mark.parametrize('module,name,version', [(mmcv, 'mmcv', '2.2.0'),
                                                 (mmdet, 'mmdet', '2.28.2'),
                                                 (mmengine, 'mmengine', '0.8.0')])
def test_check_dependencies_reads_the_installed_versions(monkeypatch, module, name, version):
    monkeypatch.setattr(module, '__version__', version)
    with pytest.raises(AssertionError, match=rf'{name}=={version} is installed'):
        check_dependencies()


def test_mmcv_without_ops_names_the_fix(monkeypatch):
    # None in sys.modules makes `import mmcv._ext` raise ModuleNotFoundError, as for mmcv-lite.
    monkeypatch.setitem(sys.modules, 'mmcv._ext', None)
    with pytest.raises(ImportError, match=r'without its compiled ops') as info:
        check_dependencies()
    assert 'MMCV_WITH_OPS=1' in str(info.value)
    assert 'docs/troubleshooting.md' in str(info.value)


def test_mmcv_ops_that_do_not_load(monkeypatch):
    real_import = version_check.importlib.import_module

    def import_module(name, *args):
        if name == 'mmcv._ext':
            raise ImportError('mmcv/_ext.cpython-311-x86_64-linux-gnu.so: undefined symbol')
        return real_import(name, *args)

    monkeypatch.setattr(version_check.importlib, 'import_module', import_module)
    with pytest.raises(ImportError, match='built against another torch'):
        check_dependencies()


def test_missing_package_names_the_requirement(monkeypatch):
    monkeypatch.setitem(sys.modules, 'mmdet', None)
    with pytest.raises(ImportError, match=r'needs mmdet, which is not installed.*mmdet>=3.0.0'):
        check_dependencies()


@pytest.mark.parametrize('setup,expected', [
    ("import mmdet; mmdet.__version__ = '2.28.2'", 'AssertionError: mmdet==2.28.2 is installed'),
    ("import sys; sys.modules['mmcv._ext'] = None", 'ImportError: mmcv is installed without its'),
])
def test_import_mmifr_runs_the_check_first(setup, expected):
    """The check is wired into ``mmifr/__init__`` and fails before any model module is imported."""
    code = f'{setup}\nimport sys\ntry:\n    import mmifr\nfinally:\n' \
           "    print('models imported:', 'mmifr.models' in sys.modules, file=sys.stderr)"
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert proc.returncode != 0
    assert expected in proc.stderr, proc.stderr[-2000:]
    assert 'models imported: False' in proc.stderr
