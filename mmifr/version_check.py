"""Check, on ``import mmifr``, that the installed OpenMMLab stack is one mmifr supports.

Like ``mmdet/__init__.py``, mmifr refuses to import next to an mmengine, mmcv or mmdet outside the
ranges it is tested with, and says which version is installed and which are supported. Without the
check, a wrong mmdet or an mmcv without its compiled ops fails much later, deep inside a model build
(``No module named 'mmcv._ext'`` from ``mmcv.ops``, or a registry ``KeyError``).

This module lives at the top of the package, not in :mod:`mmifr.utils`, because importing
``mmifr.utils`` already imports mmdet; the check has to run before anything else of mmifr does.

The ranges are the ``install_requires`` of ``setup.cfg``; ``tests/test_packaging`` keeps the two
equal.
"""
import importlib
from typing import Dict, Tuple

#: Supported versions, ``name: (minimum, maximum)``: ``minimum <= installed < maximum``.
SUPPORTED_VERSIONS: Dict[str, Tuple[str, str]] = {
    'mmengine': ('0.10.0', '1.0.0'),
    'mmcv': ('2.0.0rc4', '2.2.0'),
    'mmdet': ('3.0.0', '3.4.0'),
}

#: Where the fix of each failure is documented.
_TROUBLESHOOTING = 'docs/troubleshooting.md'


def supported_range(name: str) -> str:
    """The supported versions of ``name`` as a pip requirement, e.g. ``mmcv>=2.0.0rc4,<2.2.0``.

    Args:
        name (str): One of the keys of :data:`SUPPORTED_VERSIONS`.

    Returns:
        str: The requirement string.
    """
    if name not in SUPPORTED_VERSIONS:
        raise KeyError(f'no supported range for {name!r}; known: {sorted(SUPPORTED_VERSIONS)}')
    minimum, maximum = SUPPORTED_VERSIONS[name]
    return f'{name}>={minimum},<{maximum}'


def check_version(name: str, installed: str) -> None:
    """Raise if ``installed`` is outside the supported range of ``name``.

    Versions are compared with mmengine's ``digit_version``, as mmdet does, so that
    pre-releases order correctly (``2.0.0rc4 < 2.0.0``).

    Args:
        name (str): Package name, a key of :data:`SUPPORTED_VERSIONS`.
        installed (str): The installed version, e.g. ``mmcv.__version__``.

    Raises:
        AssertionError: ``installed`` is unsupported (the exception type mmdet raises for the
            same condition, so that code catching it for mmdet catches it for mmifr too).
    """
    from mmengine.utils import digit_version

    minimum, maximum = SUPPORTED_VERSIONS[name]
    if not digit_version(minimum) <= digit_version(installed) < digit_version(maximum):
        raise AssertionError(f'{name}=={installed} is installed, but mmifr supports '
                             f'{name}>={minimum},<{maximum}. Please install a supported version, '
                             f"e.g. pip install '{supported_range(name)}'.")


def check_mmcv_ops() -> None:
    """Raise if mmcv has no compiled ops (``mmcv._ext``), which every mmdet detector needs.

    Raises:
        ImportError: ``mmcv._ext`` is missing (``mmcv-lite``, or mmcv built without
            ``MMCV_WITH_OPS=1``) or cannot be loaded (built against another torch).
    """
    try:
        importlib.import_module('mmcv._ext')
    except ModuleNotFoundError as e:
        if e.name not in ('mmcv._ext', 'mmcv'):
            raise
        raise ImportError(
            'mmcv is installed without its compiled ops (no module mmcv._ext): it is mmcv-lite, or '
            'was built without MMCV_WITH_OPS=1. mmdet detectors need the ops (RoIAlign, NMS). '
            'Fix: `make setup` (scripts/setup_env.sh), or `pip uninstall -y mmcv mmcv-lite && '
            "MMCV_WITH_OPS=1 pip install --no-build-isolation 'mmcv==2.1.0'`; see "
            f"{_TROUBLESHOOTING}, \"No module named 'mmcv._ext'\".") from e
    except ImportError as e:
        # The extension exists but does not load: typically an undefined symbol because it was
        # compiled against another torch than the one installed.
        raise ImportError(f'mmcv._ext exists but cannot be loaded ({e}); it was most likely built '
                          'against another torch version. Rebuild or reinstall mmcv with its ops '
                          f'for the installed torch; see {_TROUBLESHOOTING}.') from e


def _installed_version(name: str) -> str:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name != name:
            raise
        raise ImportError(f'mmifr needs {name}, which is not installed. Please install '
                          f"'{supported_range(name)}' (or run `make setup`).") from e
    return module.__version__


def check_dependencies() -> None:
    """Check mmengine, mmcv (and its ops) and mmdet, in the order they depend on each other.

    mmdet is imported last: its own ``__init__`` asserts the mmcv and mmengine versions with
    ranges of its own, and mmifr's message about them should come first.

    Raises:
        AssertionError: A package's version is outside its supported range.
        ImportError: A package is missing, or mmcv has no compiled ops.
    """
    check_version('mmengine', _installed_version('mmengine'))
    check_version('mmcv', _installed_version('mmcv'))
    check_mmcv_ops()
    check_version('mmdet', _installed_version('mmdet'))
