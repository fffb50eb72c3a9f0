"""tools/device/prune_mmcv_ops.py and mmcv_ops_used.py: the GPU machine's smaller mmcv build.

A miniature mmcv source tree holds each pattern of the real one (an op dispatched through a
``cudabind.cpp`` wrapper, a registration of a function defined in a ``.cu`` file, a
registration left without its ';', a ``.cpp`` calling CUDA code directly, functors whose CUDA
specialisations live in another ``.cu``); the real mmcv 2.1.0 sdist, where fetched
(``.gpu_wheels/``), is planned, pruned and its ``cudabind.cpp`` compiled.
"""
import os
import os.path as osp
import re
import shutil
import subprocess
import tarfile

import pytest

CUDABIND_SRC = '''\
#include "pytorch_cpp_helper.hpp"
#include "pytorch_device_registry.hpp"

/* the used op, through a wrapper */
void UsedCUDAKernelLauncher(const Tensor x, Tensor y);

void used_forward_cuda(const Tensor x, Tensor y) {
  UsedCUDAKernelLauncher(x, y);
};

void used_forward_impl(const Tensor x, Tensor y);
REGISTER_DEVICE_IMPL(used_forward_impl, CUDA, used_forward_cuda);

// the unused op, registered without ';'
void UnusedCUDAKernelLauncher(const Tensor x);

void unused_forward_cuda(const Tensor x) { UnusedCUDAKernelLauncher(x); }

void unused_forward_impl(const Tensor x);
REGISTER_DEVICE_IMPL(unused_forward_impl, CUDA,
                     unused_forward_cuda)

void other_forward_impl(const Tensor x);
torch::Tensor other_op(const Tensor x);
REGISTER_DEVICE_IMPL(other_forward_impl, CUDA, other_op);

void spconv_forward_impl(const Tensor x);
void SpconvCUDAKernelLauncher(const Tensor x);
void spconv_forward_cuda(const Tensor x) { SpconvCUDAKernelLauncher(x); }
REGISTER_DEVICE_IMPL(spconv_forward_impl, CUDA, spconv_forward_cuda);
'''
FILES = {
    'mmcv/ops/__init__.py': 'from .used import used\nfrom .wrapped import Wrapped\n',
    'mmcv/ops/used.py': "ext_module = ext_loader.load_ext('_ext', ['used_forward'])\n",
    # A kept module that only imports another one.
    'mmcv/ops/wrapped.py': 'from mmcv.ops.used import used\n\n\nclass Wrapped:\n    pass\n',
    'mmcv/ops/unused.py': "ext_module = ext_loader.load_ext('_ext', ['unused_forward'])\n",
    'mmcv/ops/csrc/pytorch/pybind.cpp': '''\
void used_forward(Tensor x, Tensor y);
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("used_forward", &used_forward, "used (CUDA)", py::arg("x"));
  m.def("unused_forward", &unused_forward, "unused");
  m.def("spconv_forward", &spconv_forward, "spconv");
}
''',
    'mmcv/ops/csrc/pytorch/used.cpp': '''\
void used_forward_impl(const Tensor x, Tensor y) {
  DISPATCH_DEVICE_IMPL(used_forward_impl, x, y);
}
void used_forward(Tensor x, Tensor y) { used_forward_impl(x, y); }
''',
    'mmcv/ops/csrc/pytorch/unused.cpp': '''\
void unused_forward_impl(const Tensor x) { DISPATCH_DEVICE_IMPL(unused_forward_impl, x); }
void unused_forward(Tensor x) { unused_forward_impl(x); }
void other_forward_impl(const Tensor x) { DISPATCH_DEVICE_IMPL(other_forward_impl, x); }
''',
    # Calls CUDA code directly (under MMCV_WITH_CUDA, which the build defines).
    'mmcv/ops/csrc/pytorch/spconv.cpp': '''\
#define CHECK(x) \\
  { if (!(x)) { throw; } }
void spconv_forward_impl(const Tensor x) { DISPATCH_DEVICE_IMPL(spconv_forward_impl, x); }
Tensor direct_cuda(Tensor x);
void spconv_forward(Tensor x) {
#ifdef MMCV_WITH_CUDA
  direct_cuda(x);  // "not a brace {"
#endif
  spconv_forward_impl(x);
}
''',
    'mmcv/ops/csrc/pytorch/cpu/used_cpu.cpp': 'void used_cpu(const Tensor x) {}\n',
    'mmcv/ops/csrc/pytorch/cuda/cudabind.cpp': CUDABIND_SRC,
    'mmcv/ops/csrc/pytorch/cuda/used_cuda.cu': '''\
template <typename T>
__global__ void __launch_bounds__(256) used_kernel(const T* x) {}
void UsedCUDAKernelLauncher(const Tensor x, Tensor y) { used_kernel<<<1, 1>>>(x); }
''',
    'mmcv/ops/csrc/pytorch/cuda/unused_cuda.cu':
    'void UnusedCUDAKernelLauncher(const Tensor x) { /* { */ }\n',
    'mmcv/ops/csrc/pytorch/cuda/other_cuda.cu': 'torch::Tensor other_op(const Tensor x) {}\n',
    'mmcv/ops/csrc/pytorch/cuda/direct_cuda.cu': '''\
Tensor direct_cuda(Tensor x) {
  functor::IndiceFunctor<tv::TorchGPU, int> f;
  return f(x);
}
''',
    # The functor's CUDA specialisation, in a file no one calls a function of.
    'mmcv/ops/csrc/pytorch/cuda/indice.cu': '''\
namespace functor {
template <typename Index>
struct IndiceFunctor<tv::TorchGPU, Index> {
  Index operator()(Tensor x) { return 0; }
};
}  // namespace functor
template struct functor::IndiceFunctor<tv::TorchGPU, int>;
''',
    'mmcv/ops/csrc/pytorch/cuda/spconv_cuda.cu':
    'void SpconvCUDAKernelLauncher(const Tensor x) {}\n',
}


@pytest.fixture(scope='module')
def prune(device_tool):
    return device_tool('prune_mmcv_ops')


@pytest.fixture
def mini_mmcv(tmp_path):
    for path, text in FILES.items():
        full = tmp_path / path
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text(text)
    return str(tmp_path)


def _cu(paths):
    return sorted(osp.basename(p) for p in paths)


def test_plan_keeps_what_the_kept_modules_and_compiled_code_reach(prune, mini_mmcv):
    plan = prune.plan_prune(mini_mmcv, ['wrapped'])
    assert plan.modules == ['used', 'wrapped']  # the import is followed
    # used_cuda through its cudabind wrapper; direct_cuda because spconv.cpp
    # calls it; indice.cu because direct_cuda.cu uses its functor.
    assert _cu(plan.kept) == ['direct_cuda.cu', 'indice.cu', 'used_cuda.cu']
    assert _cu(plan.removed) == ['other_cuda.cu', 'spconv_cuda.cu', 'unused_cuda.cu']
    assert plan.removed_functions == ['spconv_forward_cuda', 'unused_forward_cuda']
    assert sorted(plan.removed_registrations) == [
        'other_forward_impl -> other_op', 'spconv_forward_impl -> spconv_forward_cuda',
        'unused_forward_impl -> unused_forward_cuda']


def test_apply_removes_the_kernels_and_their_registrations_only(prune, mini_mmcv):
    prune.main([mini_mmcv, '--keep', _keep_file(mini_mmcv, ['used'])])
    cuda = osp.join(mini_mmcv, prune.CSRC, 'cuda')
    assert sorted(os.listdir(cuda)) == ['cudabind.cpp', 'direct_cuda.cu', 'indice.cu',
                                        'used_cuda.cu']
    text = open(osp.join(cuda, 'cudabind.cpp')).read()
    for gone in ('unused_forward_cuda', 'other_op)', 'spconv_forward_cuda'):
        assert gone not in text.replace('void unused_forward_impl', '')
    # The kept wrapper, its registration and every declaration stay.
    assert 'void used_forward_cuda(const Tensor x, Tensor y) {' in text
    assert 'REGISTER_DEVICE_IMPL(used_forward_impl, CUDA, used_forward_cuda);' in text
    assert 'void UnusedCUDAKernelLauncher(const Tensor x);' in text
    # What follows a registration without ';' is not swept away with it.
    assert 'void other_forward_impl(const Tensor x);' in text
    # Pruning again finds nothing more to remove.
    plan = prune.plan_prune(mini_mmcv, ['used'])
    assert plan.removed == [] and plan.removed_functions == []


def _keep_file(folder, modules):
    path = osp.join(folder, 'keep.txt')
    with open(path, 'w') as f:
        f.write('# a comment\n' + '\n'.join(f'{m}  # why' for m in modules) + '\n')
    return path


@pytest.mark.parametrize('edit, message', [
    (('mmcv/ops/used.py', "['used_forward', 'nowhere']"), r"pybind.cpp binds no \['nowhere'\]"),
    (('mmcv/ops/csrc/pytorch/cuda/used_cuda.cu', '// launcher gone'),
     r"calls or registers \['UsedCUDAKernelLauncher'\], whose definitions were not found"),
])
def test_what_it_does_not_understand_stops_it(prune, mini_mmcv, edit, message):
    path, text = edit
    full = osp.join(mini_mmcv, path)
    if path.endswith('.py'):
        text = open(full).read().replace("['used_forward']", text)
    with open(full, 'w') as f:
        f.write(text)
    with pytest.raises(prune.PruneError, match=message):
        prune.plan_prune(mini_mmcv, ['used'])


def test_cudabind_functions_calling_removed_code_go_too(prune, mini_mmcv):
    # cudabind.cpp functions calling what only a removed kernel defines, directly or not.
    extra = osp.join(mini_mmcv, prune.CSRC, 'cuda', 'late_cuda.cu')
    with open(extra, 'w') as f:
        f.write('void late_launcher(const Tensor x) {}\n')
    with open(osp.join(mini_mmcv, prune.CUDABIND), 'a') as f:
        f.write('void late_launcher(const Tensor x);\n'
                'void late_use(Tensor x) { late_launcher(x); }\n'
                'void keep_me(Tensor x) { late_use(x); used_forward_cuda(x, x); }\n')
    plan = prune.plan_prune(mini_mmcv, ['used'])
    # keep_me calls a removed function, so it goes as well: nothing dangles.
    assert {'late_use', 'keep_me'} <= set(plan.removed_functions)
    assert 'used_forward_cuda' not in plan.removed_functions


def test_unknown_module_is_named(prune, mini_mmcv):
    with pytest.raises(prune.PruneError, match="mmcv.ops has no module 'nope'"):
        prune.plan_prune(mini_mmcv, ['nope'])


def test_keep_list_is_what_mmdet_and_mmifr_use(device_tool):
    """The keep list equals what mmcv_ops_used.py derives from the installed sources."""
    used = device_tool('mmcv_ops_used')
    assert used.main(['--check']) == 0
    listed = set(used.read_keep_list())
    assert {'nms', 'roi_align', 'focal_loss', 'deform_conv'} <= listed


def test_mmcv_ops_used_reads_imports_and_config_names(device_tool, tmp_path):
    used = device_tool('mmcv_ops_used')
    pkg = tmp_path / 'pkg'
    pkg.mkdir()
    (pkg / 'a.py').write_text('from mmcv.ops import nms, RoIAlign\nimport mmcv.ops.carafe\n')
    (pkg / 'cfg.py').write_text("model = dict(conv_cfg=dict(type='DCNv2'), x='unrelated')\n")
    (pkg / 'b.py').write_text('import mmcv\ny = mmcv.ops.point_sample\n')
    mmcv_root = osp.dirname(used.package_dir('mmcv'))
    assert used.used_modules([str(pkg)], mmcv_root) == {
        'nms', 'roi_align', 'carafe', 'modulated_deform_conv', 'point_sample'}


# ----------------------------------------------------------- the real mmcv sdist
def _sdist():
    root = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    path = osp.join(root, '.gpu_wheels', 'mmcv-2.1.0.tar.gz')
    if not osp.exists(path):
        pytest.skip('the mmcv sdist is fetched by tools/device/fetch_gpu_wheels.py')
    return path


@pytest.fixture(scope='module')
def real_mmcv(tmp_path_factory):
    folder = tmp_path_factory.mktemp('mmcv')
    with tarfile.open(_sdist()) as tar:
        tar.extractall(folder)
    return str(folder / 'mmcv-2.1.0')


def test_real_sdist_keeps_mmdets_kernels_and_drops_the_slow_ones(prune, real_mmcv):
    plan = prune.plan_prune(real_mmcv, prune.read_keep_list())
    kept, removed = _cu(plan.kept), _cu(plan.removed)
    assert len(kept) + len(removed) == 58
    for needed in ('nms_cuda.cu', 'roi_align_cuda.cu', 'focal_loss_cuda.cu',
                   'deform_conv_cuda.cu', 'modulated_deform_conv_cuda.cu'):
        assert needed in kept
    for slow in ('filtered_lrelu.cu', 'upfirdn2d_kernel.cu', 'bias_act_cuda.cu',
                 'fused_spconv_ops_cuda.cu', 'iou3d_cuda.cu'):
        assert slow in removed
    # spconv_ops.cpp calls spconv_ops_cuda.cu, whose functors live in two more.
    assert {'spconv_ops_cuda.cu', 'sparse_indice.cu', 'sparse_reordering.cu'} <= set(kept)
    assert len(kept) <= 20


@pytest.mark.slow
def test_pruned_cudabind_compiles_and_needs_only_kept_kernels(prune, real_mmcv, tmp_path):
    """``cudabind.cpp`` after pruning, compiled with g++: every function it leaves undefined
    is defined in a kept ``.cu`` file (what the GPU machine's linker will need)."""
    import torch
    if not (shutil.which('g++') and shutil.which('nm')):
        pytest.skip('needs g++ and nm')
    src = str(tmp_path / 'mmcv')
    shutil.copytree(real_mmcv, src)
    plan = prune.main([src])
    include = osp.join(osp.dirname(torch.__file__), 'include')
    import sysconfig
    common = osp.join(src, 'mmcv', 'ops', 'csrc', 'common')
    obj = str(tmp_path / 'cudabind.o')
    subprocess.run(['g++', '-std=c++17', '-c', '-w', '-DMMCV_WITH_CUDA', f'-I{include}',
                    f'-I{include}/torch/csrc/api/include',
                    f'-I{sysconfig.get_paths()["include"]}', f'-I{common}',
                    f'-I{common}/cuda', osp.join(src, prune.CUDABIND), '-o', obj],
                   check=True)
    symbols = subprocess.run(['nm', '-C', '--undefined-only', obj], capture_output=True,
                             text=True, check=True).stdout
    # Plain C++ functions: no namespace (torch's, std's), no compiler internals.
    names = {line.split('U ', 1)[1].split('(')[0] for line in symbols.splitlines()}
    ours = {n for n in names if re.fullmatch(r'[A-Za-z]\w*', n)
            and n not in ('free', 'malloc', 'memcpy', 'memmove', 'memset', 'strlen')}
    kept_text = ''.join(open(osp.join(src, p)).read() for p in plan.kept)
    assert ours, symbols
    missing = sorted(n for n in ours if not re.search(rf'\b{n}\s*\(', kept_text))
    assert not missing
