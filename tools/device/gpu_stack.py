"""What the GPU machine has, what is carried to it, and where.

One place for the facts that :mod:`fetch_gpu_wheels` (run here, with
internet) and :mod:`run_gpu_checks` (run on the GPU machine, without) must
agree on. Standard library only: the device script imports it before any
carried package is installed.

The GPU machine (``/work/.library/device/KINDS.md``, kind ``nvidia-h200``):
one H200, CPython 3.12, torch 2.11.0+cu130, nvcc 13.0, cmake, ninja and the
scientific stack below; no mmengine / mmcv / mmdet / pycocotools and no
network, so those travel as wheels (and mmcv as its sdist, built there).
"""
import os.path as osp

#: Repository root (``tools/device/../..``).
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: The ignored folder the wheels are fetched into and that ``carry`` names.
WHEEL_DIR = '.gpu_wheels'
#: Pinned wheels for the machine (exact versions), relative to the root.
REQUIREMENTS = 'requirements/gpu.txt'
#: The mmcv pin, shared with the CPU set-up (``mmcv==2.1.0``), fetched as sdist.
MMCV_REQUIREMENT = 'requirements/mmcv.txt'
#: Interpreter and platforms of the wheels (pip download's target).
PYTHON_VERSION = '3.12'
PLATFORMS = ('manylinux_2_28_x86_64', 'manylinux_2_24_x86_64', 'manylinux_2_17_x86_64',
             'manylinux2014_x86_64')
#: The folder must leave room in the 64 MiB that travel with the working tree.
MAX_WHEEL_DIR_MIB = 40
#: Checksums of the folder's files, written by the fetch, checked on the machine.
CHECKSUMS = 'SHA256SUMS'

#: Distributions the machine provides, by their import name (``None``: a tool,
#: not imported). A requirement of a carried package must be one of these or
#: carried itself (the fetch checks); the device script imports the modules.
DEVICE_PROVIDES = {
    'torch': 'torch',
    'numpy': 'numpy',
    'opencv-python-headless': 'cv2',
    'matplotlib': 'matplotlib',
    'scipy': 'scipy',
    'six': 'six',
    'tqdm': 'tqdm',
    'pyyaml': 'yaml',
    'rich': 'rich',
    'packaging': 'packaging',
    'pillow': 'PIL',
    'pytest': 'pytest',
    'wheel': None,
    'ninja': None,  # torch's extension builder runs the ninja binary
}
#: Requirement names that another distribution of the machine satisfies:
#: mmengine asks for ``opencv-python``; the headless build has the same ``cv2``.
ALIASES = {'opencv-python': 'opencv-python-headless'}
#: Modules of the carried distributions, imported once they are installed
#: (mmdet imports mmcv, so it is checked after mmcv is built).
CARRIED_IMPORTS = ('mmengine', 'pycocotools.mask', 'shapely', 'addict', 'yapf', 'platformdirs',
                   'termcolor', 'terminaltables', 'pkg_resources')


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them (``PyYAML`` -> ``pyyaml``)."""
    return name.lower().replace('_', '-').replace('.', '-')


def read_pins(path: str) -> dict:
    """``{canonical name: version}`` of a requirements file of ``name==version`` lines.

    Raises:
        ValueError: For a line that is not an exact pin, or a name pinned twice
            (two versions of one package stop the install on the machine).
    """
    pins = {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            name, sep, version = line.partition('==')
            if not sep or not name.strip() or not version.strip() or ';' in line:
                raise ValueError(f'{path}:{lineno}: {line!r} is not an exact pin (name==version)')
            key = canonical(name.strip())
            if key in pins:
                raise ValueError(f'{path}:{lineno}: {name.strip()!r} is pinned twice')
            pins[key] = version.strip()
    return pins
