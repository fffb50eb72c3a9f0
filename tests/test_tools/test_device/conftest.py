"""Loads the scripts of ``tools/device/`` (not a package) by path."""
import importlib.util
import os.path as osp
import sys

import pytest

#: ``tools/device`` of this checkout.
DEVICE_TOOLS = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))), 'tools', 'device')


def load_device_tool(name: str):
    """Import ``tools/device/<name>.py`` (its folder on ``sys.path``, as when run)."""
    if DEVICE_TOOLS not in sys.path:
        sys.path.insert(0, DEVICE_TOOLS)
    path = osp.join(DEVICE_TOOLS, f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'device_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def device_tool():
    """:func:`load_device_tool`."""
    return load_device_tool
