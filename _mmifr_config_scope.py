"""Make MMEngine resolve the ``mmifr::`` config scope, before any config is parsed.

``_base_ = 'mmifr::ifr/mask_rcnn_r50_ifr_1x.py'`` needs two things of mmengine 0.10.x that it does
not do by itself:

1. ``mmengine.config.utils.MODULE2PACKAGE`` must hold ``'mmifr'``: mmengine accepts ``pkg::`` only
   for the packages of that hard-coded dict (otherwise ``mmengine does not support to load mmifr
   config``). A config is parsed *before* its ``custom_imports`` run, so ``import mmifr`` in the
   config cannot do it; it has to happen before ``Config.fromfile``.
2. ``mmengine.utils.get_installed_path('mmifr')`` must return the real package folder. It joins
   the location of the distribution's metadata with the package name, which is right for wheels
   but not for PEP 660 editable installs (``pip install -e .``): their metadata lies in
   site-packages while the package stays in the checkout, so the joined path does not exist.
   Both ``mmifr::`` (``<package>/.mim/configs``) and new-style ``read_base()`` imports of
   ``mmifr.configs`` go through this function, and openmim's copy of it finds
   ``<package>/.mim/tools/train.py`` for ``mim train mmifr``.

:func:`register` does both. It runs

- on ``import mmifr`` (so mmifr's ``tools/train.py`` and ``tools/test.py``, which import mmifr
  before parsing, and any script that imports mmifr first, resolve ``mmifr::``), and
- at interpreter start-up, through ``mmifr-config-scope.pth``, which ``pip install`` (wheel or
  editable) puts into site-packages: the line calls :func:`install`, which patches mmengine the
  moment it is imported and imports nothing itself. That is what makes the scope work in scripts
  that never import mmifr before parsing, e.g. mmdet's own ``tools/train.py`` or ``mim train``.

This is a top-level module, not part of the ``mmifr`` package, because importing anything under
``mmifr`` runs ``mmifr/__init__.py``, which imports torch and mmdet: far too much for every Python
start-up. It imports nothing beyond the standard library until mmengine itself is imported.
"""
import functools
import importlib.abc
import importlib.util
import os.path as osp
import sys

#: The config scope (``mmifr::``), which is also the module and distribution name.
SCOPE = 'mmifr'

_CONFIG_UTILS = 'mmengine.config.utils'
_PACKAGE_UTILS = 'mmengine.utils.package_utils'
# openmim (``mim train/test mmifr``) has its own copy of get_installed_path, with the same flaw.
_MIM_UTILS = 'mim.utils.utils'
# Modules that bind ``get_installed_path`` by name when they are imported, so patching the
# defining module after them does not reach them.
_BINDERS = {
    _PACKAGE_UTILS: ('mmengine.utils', 'mmengine.config.config', 'mmengine.hub.hub'),
    _MIM_UTILS: ('mim.utils', 'mim.commands.train', 'mim.commands.test', 'mim.commands.run'),
}


def _real_package_path(package: str) -> str:
    """The folder of the importable ``package``, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f'{package} is not importable', name=package)
    return osp.dirname(spec.origin)


def _wrap_get_installed_path(get_installed_path):
    if getattr(get_installed_path, '_mmifr_patched', False):
        return get_installed_path

    @functools.wraps(get_installed_path)
    def patched(package: str) -> str:
        path = get_installed_path(package)
        if package == SCOPE and not osp.isdir(path):
            # PEP 660 editable install: metadata in site-packages, code in the checkout.
            return _real_package_path(package)
        return path

    patched._mmifr_patched = True
    return patched


def _patch_config_utils(module) -> None:
    module.MODULE2PACKAGE.setdefault(SCOPE, SCOPE)


def _patch_package_utils(module) -> None:
    module.get_installed_path = _wrap_get_installed_path(module.get_installed_path)


def register() -> None:
    """Register the ``mmifr::`` scope with the mmengine modules imported so far.

    Idempotent. Modules not imported yet are patched by the import hook of :func:`install` when
    they are, or by the next call.
    """
    if _CONFIG_UTILS in sys.modules:
        _patch_config_utils(sys.modules[_CONFIG_UTILS])
    for defining, binders in _BINDERS.items():
        if defining not in sys.modules:
            continue
        package_utils = sys.modules[defining]
        _patch_package_utils(package_utils)
        for name in binders:
            module = sys.modules.get(name)
            if module is not None and hasattr(module, 'get_installed_path'):
                module.get_installed_path = package_utils.get_installed_path


class _PatchingLoader(importlib.abc.Loader):
    """Runs the real loader, then patches the freshly executed module."""

    def __init__(self, loader, patch):
        self._loader = loader
        self._patch = patch

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._patch(module)

    def __getattr__(self, name):
        # get_resource_reader, is_package, get_source ... of the real loader.
        return getattr(self._loader, name)


class _ScopeFinder(importlib.abc.MetaPathFinder):
    """Patches mmengine's config and package utilities as they are imported."""

    _PATCHES = {
        _CONFIG_UTILS: _patch_config_utils,
        _PACKAGE_UTILS: _patch_package_utils,
        _MIM_UTILS: _patch_package_utils,
    }

    def find_spec(self, fullname, path, target=None):
        patch = self._PATCHES.get(fullname)
        if patch is None:
            return None
        # Ask the finders after this one for the real spec.
        for finder in sys.meta_path[sys.meta_path.index(self) + 1:]:
            find = getattr(finder, 'find_spec', None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, 'exec_module'):
            return spec
        spec.loader = _PatchingLoader(spec.loader, patch)
        return spec


def install() -> None:
    """Register the scope now for the mmengine modules already imported, later for the others.

    Called by ``mmifr-config-scope.pth`` at start-up and by ``import mmifr``. Idempotent.
    """
    register()
    if not any(isinstance(finder, _ScopeFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _ScopeFinder())
