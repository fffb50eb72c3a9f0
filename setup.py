"""Build hooks of mmifr; the metadata lives in setup.cfg.

Besides keeping ``pip install -e .`` working with setuptools<70, this file makes the installed
package carry what OpenMMLab tools look for, as mmdet's ``setup.py`` (``add_mim_extension``) does:

- ``mmifr/.mim/{configs,tools,model-index.yml}``: where mmengine resolves ``mmifr::`` base configs
  and where ``mim train/test mmifr`` find the scripts. A wheel gets copies; an editable install
  gets symlinks into the checkout, so edits to ``configs/`` show at once.
- ``mmifr-config-scope.pth`` in site-packages: registers the ``mmifr::`` scope with mmengine at
  interpreter start-up (see ``_mmifr_config_scope.py``), so that scripts which parse a config
  before importing mmifr (mmdet's own ``tools/train.py``, ``mim``) resolve it too.
"""
import os
import os.path as osp
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = osp.dirname(osp.abspath(__file__))
#: What goes into ``mmifr/.mim``: folders and files at the top of the source tree.
MIM_FILES = ('configs', 'tools', 'model-index.yml')
PTH_NAME = 'mmifr-config-scope.pth'
# A .pth line that starts with "import" is executed by `site` at start-up. It must stay cheap:
# the module imports only the standard library and patches mmengine lazily.
PTH_LINE = 'import _mmifr_config_scope; _mmifr_config_scope.install()\n'
_IGNORE = shutil.ignore_patterns('__pycache__', '*.pyc')


def _link_mim_extension(package_dir: str) -> None:
    """Editable installs: ``<package>/.mim/<name>`` -> ``../../<name>`` (relative symlinks)."""
    mim_dir = osp.join(package_dir, '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        target = osp.join(mim_dir, name)
        if osp.islink(target):
            os.remove(target)
        elif osp.isdir(target):
            shutil.rmtree(target)
        elif osp.exists(target):
            os.remove(target)
        os.symlink(osp.join('..', '..', name), target)


def _copy_mim_extension(src_root: str, package_dir: str) -> None:
    """Wheels: copy ``configs/``, ``tools/`` and ``model-index.yml`` into ``<package>/.mim``."""
    mim_dir = osp.join(package_dir, '.mim')
    if osp.lexists(mim_dir):
        shutil.rmtree(mim_dir) if not osp.islink(mim_dir) else os.remove(mim_dir)
    os.makedirs(mim_dir)
    for name in MIM_FILES:
        src = osp.join(src_root, name)
        if not osp.exists(src):
            raise FileNotFoundError(f'{src} is missing: the package would ship without it; '
                                    f'MANIFEST.in must include all of {MIM_FILES}')
        if osp.isdir(src):
            shutil.copytree(src, osp.join(mim_dir, name), ignore=_IGNORE)
        else:
            shutil.copy2(src, osp.join(mim_dir, name))


class BuildPy(build_py):
    """``build_py`` that also writes ``mmifr/.mim`` and the config-scope ``.pth``."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            # setuptools' editable wheel maps `mmifr` to the checkout and drops build_lib, so the
            # links go into the source tree and the .pth straight into the wheel being assembled.
            _link_mim_extension(osp.join(ROOT, 'mmifr'))
            pth_dir = self.get_finalized_command('install').install_lib
        else:
            _copy_mim_extension(ROOT, osp.join(self.build_lib, 'mmifr'))
            pth_dir = self.build_lib
        os.makedirs(pth_dir, exist_ok=True)
        with open(osp.join(pth_dir, PTH_NAME), 'w') as f:
            f.write(PTH_LINE)


setup(cmdclass={'build_py': BuildPy})
