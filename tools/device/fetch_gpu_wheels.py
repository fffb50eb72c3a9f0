"""Fetch, here, the packages the GPU machine lacks into one folder it can carry.

The GPU machine (``docs/gpu.md``) has CPython 3.12, a CUDA build of torch and
the scientific stack, but no mmengine / mmcv / mmdet / pycocotools and no
network. This downloads, with pip, the exact pins of ``requirements/gpu.txt``
as CPython 3.12 manylinux x86_64 wheels and the mmcv sdist pinned in
``requirements/mmcv.txt`` (built there with CUDA by
``tools/device/run_gpu_checks.py``) into ``.gpu_wheels/`` (ignored by git),
then checks what it got:

- exactly one file per pin, of the pinned version (two versions of one
  package stop the install there);
- every requirement of every carried package (its wheel's ``Requires-Dist``,
  the sdist's ``requires.txt``; markers evaluated for CPython 3.12 on Linux,
  extras ignored) is carried too or provided by the machine
  (``tools/device/gpu_stack.py``), so ``--no-deps`` leaves nothing out;
- the folder stays under ``MAX_WHEEL_DIR_MIB``.

It writes ``SHA256SUMS`` beside the files (checked on the machine) and
replaces the folder only once everything passed.

Example::

    .venv/bin/python tools/device/fetch_gpu_wheels.py      # -> .gpu_wheels/
"""
import argparse
import hashlib
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from typing import Dict, Iterable, List, Tuple

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import gpu_stack  # noqa: E402

try:
    from packaging.markers import Marker
    from packaging.requirements import Requirement
except ImportError:  # pip always has a copy
    from pip._vendor.packaging.markers import Marker  # noqa: F401
    from pip._vendor.packaging.requirements import Requirement

#: The machine's interpreter, for evaluating requirement markers.
MARKER_ENV = dict(
    python_version=gpu_stack.PYTHON_VERSION,
    python_full_version=gpu_stack.PYTHON_VERSION + '.3',
    sys_platform='linux',
    platform_system='Linux',
    platform_machine='x86_64',
    os_name='posix',
    implementation_name='cpython',
    platform_python_implementation='CPython',
    extra='')
_WHEEL_NAME = re.compile(r'^(?P<name>[^-]+)-(?P<version>[^-]+)-.+\.whl$')
_SDIST_NAME = re.compile(r'^(?P<name>.+)-(?P<version>[^-]+)\.tar\.gz$')


def log(msg: str) -> None:
    print(f'[fetch_gpu_wheels] {msg}', flush=True)


def pip_download(python: str, dest: str) -> None:
    """The two pip downloads: binary wheels for the machine, and the mmcv sdist."""
    platforms = [arg for p in gpu_stack.PLATFORMS for arg in ('--platform', p)]
    pip = [python, '-m', 'pip', 'download', '--disable-pip-version-check', '--no-deps',
           '-d', dest]
    log(f'wheels of {gpu_stack.REQUIREMENTS} for CPython {gpu_stack.PYTHON_VERSION}')
    subprocess.run(pip + ['--only-binary=:all:', '--python-version', gpu_stack.PYTHON_VERSION,
                          '--implementation', 'cp', *platforms,
                          '-r', osp.join(gpu_stack.REPO_ROOT, gpu_stack.REQUIREMENTS)],
                   check=True)
    log(f'sdist of {gpu_stack.MMCV_REQUIREMENT}')
    # pip prepares the sdist's metadata by running its setup.py, which imports
    # pkg_resources; without build isolation it uses this interpreter's
    # (setuptools<81, requirements/build.txt) instead of the newest setuptools.
    probe = subprocess.run([python, '-c', 'import pkg_resources'], capture_output=True)
    isolation = ['--no-build-isolation'] if probe.returncode == 0 else []
    subprocess.run(pip + ['--no-binary', ':all:', *isolation,
                          '-r', osp.join(gpu_stack.REPO_ROOT, gpu_stack.MMCV_REQUIREMENT)],
                   check=True)


def identify(files: Iterable[str]) -> Dict[str, Tuple[str, str]]:
    """``{canonical name: (version, file)}`` of downloaded wheels and sdists.

    Raises:
        ValueError: For a file that is neither, or a second file of one name.
    """
    found: Dict[str, Tuple[str, str]] = {}
    for name in sorted(files):
        match = _WHEEL_NAME.match(name) or _SDIST_NAME.match(name)
        if not match:
            raise ValueError(f'unexpected file {name!r} in the download')
        key = gpu_stack.canonical(match['name'])
        if key in found:
            raise ValueError(f'two files of {key!r}: {found[key][1]} and {name}')
        found[key] = (match['version'], name)
    return found


def check_pins(found: Dict[str, Tuple[str, str]], pins: Dict[str, str]) -> List[str]:
    """Errors where the download differs from the pins (missing, extra, version)."""
    errors = [f'{name}=={version} was not downloaded' for name, version in pins.items()
              if name not in found]
    errors += [f'{found[name][1]} is not pinned in {gpu_stack.REQUIREMENTS}' for name in found
               if name not in pins]
    errors += [f'{found[name][1]} is not the pinned version {version}'
               for name, version in pins.items()
               if name in found and found[name][0] != version]
    return errors


def wheel_requirements(path: str) -> List[str]:
    """The ``Requires-Dist`` lines of a wheel's own METADATA.

    Only ``<name>-<version>.dist-info/METADATA`` at the top of the archive:
    setuptools vendors packages with dist-infos of their own.
    """
    with zipfile.ZipFile(path) as whl:
        metadata = [n for n in whl.namelist()
                    if re.fullmatch(r'[^/]+\.dist-info/METADATA', n)]
        if len(metadata) != 1:
            raise ValueError(f'{osp.basename(path)} has {len(metadata)} top-level METADATA files')
        text = whl.read(metadata[0]).decode()
    return [line.split(':', 1)[1].strip() for line in text.splitlines()
            if line.startswith('Requires-Dist:')]


def sdist_requirements(path: str) -> List[str]:
    """Install requirements of a setuptools sdist (``*.egg-info/requires.txt``).

    Lines before the first ``[section]`` are unconditional; a ``[:marker]``
    section applies its marker; ``[extra]`` sections are left out.
    """
    with tarfile.open(path) as tar:
        member = next((m for m in tar.getmembers()
                       if re.fullmatch(r'[^/]+/[^/]+\.egg-info/requires\.txt', m.name)), None)
        if member is None:
            raise ValueError(f'{osp.basename(path)} has no egg-info/requires.txt')
        text = tar.extractfile(member).read().decode()
    reqs, marker, in_extra = [], '', False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith('['):
            extra, _, marker = line[1:-1].partition(':')
            in_extra = bool(extra)
        elif line and not in_extra:
            reqs.append(f'{line}; {marker}' if marker else line)
    return reqs


def unmet_requirements(folder: str, found: Dict[str, Tuple[str, str]]) -> List[str]:
    """Requirements of the carried packages that neither they nor the machine meet."""
    have = set(found) | set(gpu_stack.DEVICE_PROVIDES)
    errors = []
    for name, (_, file) in sorted(found.items()):
        path = osp.join(folder, file)
        lines = wheel_requirements(path) if file.endswith('.whl') else sdist_requirements(path)
        for line in lines:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate(MARKER_ENV):
                continue
            key = gpu_stack.canonical(req.name)
            if gpu_stack.ALIASES.get(key, key) not in have:
                errors.append(f'{name} needs {line!r}, which neither {gpu_stack.REQUIREMENTS} '
                              'carries nor the GPU machine provides (tools/device/gpu_stack.py)')
    return errors


def write_checksums(folder: str) -> None:
    lines = []
    for name in sorted(os.listdir(folder)):
        with open(osp.join(folder, name), 'rb') as f:
            lines.append(f'{hashlib.sha256(f.read()).hexdigest()}  {name}\n')
    with open(osp.join(folder, gpu_stack.CHECKSUMS), 'w') as f:
        f.writelines(lines)


def folder_mib(folder: str) -> float:
    return sum(osp.getsize(osp.join(folder, n)) for n in os.listdir(folder)) / 2**20


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default=osp.join(gpu_stack.REPO_ROOT, gpu_stack.WHEEL_DIR),
                        help='the folder to fill (replaced once the fetch has passed)')
    parser.add_argument('--python', default=sys.executable,
                        help='interpreter whose pip downloads (default: this one)')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    pins = gpu_stack.read_pins(osp.join(gpu_stack.REPO_ROOT, gpu_stack.REQUIREMENTS))
    mmcv = gpu_stack.read_pins(osp.join(gpu_stack.REPO_ROOT, gpu_stack.MMCV_REQUIREMENT))
    overlap = sorted(set(pins) & set(mmcv))
    if overlap:
        sys.exit(f'{overlap} pinned in both {gpu_stack.REQUIREMENTS} and '
                 f'{gpu_stack.MMCV_REQUIREMENT}')
    partial = args.out.rstrip('/') + '.partial'
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    pip_download(args.python, partial)
    found = identify(os.listdir(partial))
    errors = check_pins(found, {**pins, **mmcv}) + unmet_requirements(partial, found)
    size = folder_mib(partial)
    if size > gpu_stack.MAX_WHEEL_DIR_MIB:
        errors.append(f'{size:.1f} MiB is over the {gpu_stack.MAX_WHEEL_DIR_MIB} MiB budget')
    if errors:
        sys.exit('fetch_gpu_wheels: the download is not what the GPU machine needs ('
                 f'{partial} kept for inspection):\n  ' + '\n  '.join(errors))
    write_checksums(partial)
    shutil.rmtree(args.out, ignore_errors=True)
    os.rename(partial, args.out)
    for name, (version, file) in sorted(found.items()):
        log(f'  {file}')
    log(f'{len(found)} files, {folder_mib(args.out):.1f} MiB in {args.out}; every requirement '
        'is carried or on the GPU machine')
    log(f"carry it: run(..., carry=['{osp.basename(args.out.rstrip('/'))}']) (docs/gpu.md)")


if __name__ == '__main__':
    main()
