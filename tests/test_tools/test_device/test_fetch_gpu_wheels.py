"""tools/device/fetch_gpu_wheels.py: what it checks of a download (no network here)."""
import io
import os.path as osp
import tarfile
import zipfile

import pytest


@pytest.fixture(scope='module')
def fetch(device_tool):
    return device_tool('fetch_gpu_wheels')


def _wheel(folder, name, version, requires=(), vendored=()):
    """A wheel holding only its METADATA (and vendored dist-infos' METADATA)."""
    path = osp.join(folder, f'{name}-{version}-py3-none-any.whl')
    with zipfile.ZipFile(path, 'w') as whl:
        lines = [f'Name: {name}', f'Version: {version}']
        lines += [f'Requires-Dist: {r}' for r in requires]
        whl.writestr(f'{name}-{version}.dist-info/METADATA', '\n'.join(lines))
        for dep in vendored:
            whl.writestr(f'{name}/_vendor/{dep}-1.0.dist-info/METADATA',
                         f'Name: {dep}\nRequires-Dist: not-carried-anywhere\n')
    return osp.basename(path)


def _sdist(folder, name, version, requires_txt):
    path = osp.join(folder, f'{name}-{version}.tar.gz')
    with tarfile.open(path, 'w:gz') as tar:
        data = requires_txt.encode()
        info = tarfile.TarInfo(f'{name}-{version}/{name}.egg-info/requires.txt')
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return osp.basename(path)


def test_requirements_must_be_carried_or_on_the_machine(fetch, tmp_path):
    folder = str(tmp_path)
    _wheel(folder, 'mmengine', '0.10.7',
           ['addict', 'numpy', 'opencv-python>=3', 'regex; sys_platform == "win32"',
            'tomli>=2; python_version < "3.11"', 'pytest; extra == "tests"'])
    _wheel(folder, 'addict', '2.4.0', vendored=['jaraco'])
    found = fetch.identify(['mmengine-0.10.7-py3-none-any.whl', 'addict-2.4.0-py3-none-any.whl'])
    # numpy is the machine's, opencv-python is met by its headless build, the
    # markers leave out regex (Windows), tomli (Python < 3.11) and the extra;
    # vendored METADATA files are not the wheel's own.
    assert fetch.unmet_requirements(folder, found) == []
    # Without addict carried, mmengine's need is reported by name.
    found.pop('addict')
    errors = fetch.unmet_requirements(folder, found)
    assert len(errors) == 1 and "mmengine needs 'addict'" in errors[0]


def test_sdist_requirements_skip_extras_and_apply_markers(fetch, tmp_path):
    name = _sdist(str(tmp_path), 'mmcv', '2.1.0',
                  'addict\nyapf\n\n[:sys_platform == "win32"]\nregex\n\n[all]\nonnx\n')
    reqs = fetch.sdist_requirements(str(tmp_path / name))
    assert reqs == ['addict', 'yapf', 'regex; sys_platform == "win32"']
    found = fetch.identify([name])
    errors = fetch.unmet_requirements(str(tmp_path), found)
    assert [e.split(',')[0] for e in errors] == ["mmcv needs 'addict'", "mmcv needs 'yapf'"]


def test_download_must_match_the_pins(fetch):
    found = fetch.identify(['mmdet-3.3.0-py3-none-any.whl', 'mmcv-2.1.0.tar.gz',
                            'Shapely-2.1.0-cp312-cp312-manylinux_2_28_x86_64.whl'])
    errors = fetch.check_pins(found, {'mmdet': '3.3.0', 'mmcv': '2.1.0', 'shapely': '2.2.0',
                                      'addict': '2.4.0'})
    assert errors == ['addict==2.4.0 was not downloaded',
                      'Shapely-2.1.0-cp312-cp312-manylinux_2_28_x86_64.whl is not the pinned '
                      'version 2.2.0']
    with pytest.raises(ValueError, match='two files of .mmdet.'):
        fetch.identify(['mmdet-3.3.0-py3-none-any.whl', 'mmdet-3.2.0-py3-none-any.whl'])


def test_pins_are_exact_and_unique(device_tool, tmp_path):
    gpu_stack = device_tool('gpu_stack')
    pins = gpu_stack.read_pins(osp.join(gpu_stack.REPO_ROOT, gpu_stack.REQUIREMENTS))
    assert pins['mmdet'] == '3.3.0' and pins['mmengine'] == '0.10.7'
    # What the machine has is never carried: above all not another torch.
    assert not set(pins) & set(gpu_stack.DEVICE_PROVIDES)
    bad = tmp_path / 'req.txt'
    bad.write_text('mmdet>=3.3.0\n')
    with pytest.raises(ValueError, match=r"req.txt:1: 'mmdet>=3.3.0' is not an exact pin"):
        gpu_stack.read_pins(str(bad))
    bad.write_text('PyYAML==6.0\npyyaml==6.0.1\n')
    with pytest.raises(ValueError, match="'pyyaml' is pinned twice"):
        gpu_stack.read_pins(str(bad))
