"""Helpers for the training-behaviour tests: a tiny *IFR* Mask R-CNN and probes.

The tiny config itself is ``tests/test_tools/conftest.py``'s
(:func:`write_tiny_mask_rcnn_config`, loaded here by file path because
``tests/`` is not a package); :func:`write_tiny_ifr_config` appends the IFR
part of a project config to it: the mask head becomes ``IFRConvFCMaskHead``
(one 32-channel refiner, few solver steps), and the IFR hooks
(``IFRSolverStatsHook``, ``IFRUnrollWarmupHook``) are added as
``configs/ifr/_base_/ifr_runtime.py`` adds them.

:func:`write_engine_probe_module` writes an importable module of test-only
hooks and a NaN-injecting block that the training subprocesses load through
``custom_imports``.

Modules outside this folder (``tests/test_tools/test_bad_inputs.py``) load
this file with :func:`load_engine_helpers`.
"""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

import pytest

_HERE = osp.dirname(osp.abspath(__file__))
_TOOLS_CONFTEST = osp.join(osp.dirname(_HERE), 'test_tools', 'conftest.py')


def _load_by_path(name: str, path: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


#: ``tests/test_tools/conftest.py`` as a plain module (its helpers, not fixtures).
tools_helpers = _load_by_path('_mmifr_tests_tools_helpers', _TOOLS_CONFTEST)
REPO_ROOT = tools_helpers.REPO_ROOT
run_tool = tools_helpers.run_tool


def run_tool_unchecked(args: List[str],
                       cwd: str,
                       timeout: float = 600,
                       env: Optional[Dict[str, str]] = None,
                       pythonpath: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """``run_tool`` (same environment) for runs that are expected to fail.

    Returns:
        subprocess.CompletedProcess: with ``returncode`` and merged output in
        ``stdout``; never fails the test itself.
    """
    args = [a if not a.startswith('tools/') else osp.join(REPO_ROOT, a) for a in args]
    full_env = dict(os.environ)
    full_env['PYTHONPATH'] = os.pathsep.join(
        [REPO_ROOT, *pythonpath] + ([full_env['PYTHONPATH']] if full_env.get('PYTHONPATH') else []))
    full_env.setdefault('OMP_NUM_THREADS', '1')
    full_env.update(env or {})
    return subprocess.run(
        args,
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout)


def load_engine_helpers():
    """This module, for test modules in other folders."""
    return _load_by_path('_mmifr_tests_engine_helpers', osp.abspath(__file__))


def drop_annotations(dataset: Dict, image_ids: Sequence[int]) -> None:
    """Remove every annotation of ``image_ids`` from a ``make_tiny_coco`` split
    (the images stay, without objects)."""
    with open(dataset['ann_path']) as f:
        coco = json.load(f)
    coco['annotations'] = [a for a in coco['annotations'] if a['image_id'] not in image_ids]
    with open(dataset['ann_path'], 'w') as f:
        json.dump(coco, f)


#: A few solver steps keep a CPU iteration short; the solves do not converge
#: in that budget, which is irrelevant to these tests.
TINY_SOLVER = dict(solver='broyden', max_iter=6, tol=1e-3, backward_max_iter=6)


def ifr_config_source(solver: Optional[dict] = None,
                      block: Optional[dict] = None,
                      switch_iter: Optional[int] = 0,
                      unroll_steps: int = 2,
                      imports: Sequence[str] = (),
                      hooks: Sequence[dict] = (),
                      jac_reg: Optional[dict] = None,
                      budget: Optional[int] = None) -> str:
    """Config source that turns the tiny Mask R-CNN into an IFR one.

    Args:
        solver (dict, optional): the refiner's ``solver``; :data:`TINY_SOLVER`
            by default.
        block (dict, optional): the refiner's ``block`` config.
        switch_iter (int, optional): ``IFRUnrollWarmupHook.switch_iter``
            (0: DEQ from the start); ``None`` leaves the warm-up hook out.
        unroll_steps (int): warm-up applications of the block.
        imports (Sequence[str]): modules imported after ``mmifr``.
        hooks (Sequence[dict]): hooks appended to ``custom_hooks``.
        jac_reg (dict, optional): the refiner's ``jac_reg``.
        budget (int, optional): the refiner's ``budget``; ``None`` (the DEQ
            solve, which these tests exercise) unless given.
    """
    ifr_cfg = dict(type='IFRRefiner', solver=dict(solver or TINY_SOLVER), budget=budget)
    if jac_reg is not None:
        ifr_cfg['jac_reg'] = jac_reg
    if block is not None:
        ifr_cfg['block'] = block
    custom_hooks = [dict(type='IFRSolverStatsHook')]
    if switch_iter is not None:
        custom_hooks.append(
            dict(type='IFRUnrollWarmupHook', switch_iter=switch_iter, unroll_steps=unroll_steps))
    custom_hooks += list(hooks)
    return (f"custom_imports = dict(imports={['mmifr', *imports]!r}, "
            'allow_failed_imports=False)\n'
            "model['roi_head']['mask_head'].update(type='IFRConvFCMaskHead', "
            f'ifr_cfg={ifr_cfg!r})\n'
            f'custom_hooks = {custom_hooks!r}\n')


def write_tiny_ifr_config(path: str,
                          dataset: Dict,
                          max_iters: int = 4,
                          ckpt_interval: int = 2,
                          val_interval: Optional[int] = None,
                          extra: str = '',
                          **ifr) -> str:
    """The tiny Mask R-CNN config with an IFR mask head, written to ``path``.

    Args:
        path, dataset, max_iters, ckpt_interval, val_interval: see
            ``write_tiny_mask_rcnn_config`` in ``tests/test_tools/conftest.py``.
        extra (str): more config source, appended after the IFR part.
        **ifr: arguments of :func:`ifr_config_source`.
    """
    return tools_helpers.write_tiny_mask_rcnn_config(
        path,
        dataset,
        max_iters=max_iters,
        ckpt_interval=ckpt_interval,
        val_interval=val_interval,
        extra=ifr_config_source(**ifr) + extra)


#: Name of the importable module written by :func:`write_engine_probe_module`.
ENGINE_PROBE_MODULE = 'mmifr_engine_probes'

_ENGINE_PROBE_SOURCE = '''\
"""Test-only blocks and hooks for the IFR training-behaviour tests."""
import copy
import hashlib
import json
import os
import os.path as osp
import signal

import torch
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS, MODELS
from mmifr.engine.hooks import find_refiners
from mmifr.models.layers import DoubleResidualBlock


def _bare(model):
    return model.module if is_model_wrapper(model) else model


@MODELS.register_module()
class NaNInjectingBlock(DoubleResidualBlock):
    """The IFR block, except that the forward *solve* meets NaN/Inf.

    A solve calls the block without autograd, starting from ``h = 0``; from its
    ``nan_from_call``-th call on, every output is NaN (``value='nan'``) or +Inf.
    Calls with autograd (warm-up unrolling, the backward pass) are untouched,
    so only the solver's iterates are poisoned.
    """

    def __init__(self, nan_from_call=3, value='nan', **kwargs):
        super().__init__(**kwargs)
        self.nan_from_call = nan_from_call
        self.value = float(value)
        self.calls = 0

    def forward(self, h, x):
        out = super().forward(h, x)
        if torch.is_grad_enabled():
            return out
        if not h.any():  # h0 = 0: a new solve starts
            self.calls = 0
        self.calls += 1
        if self.calls >= self.nan_from_call:
            out = torch.full_like(out, self.value)
        return out


@HOOKS.register_module()
class KillAtIterHook(Hook):
    """SIGKILL the process after iteration ``kill_at`` (and its checkpoint)."""
    priority = 'LOWEST'

    def __init__(self, kill_at=None):
        self.kill_at = kill_at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        # ``runner.iter`` counts finished iterations only after this hook.
        if self.kill_at is not None and runner.iter + 1 == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


def _refiner_phase(runner):
    return {
        name: dict(unroll_warmup=r.unroll_warmup, effective_mode=r.effective_mode)
        for name, r in find_refiners(runner.model).items()
    }


@HOOKS.register_module()
class PhaseProbeHook(Hook):
    """Save iter, IFR phase and optimizer state where training (re)starts.

    Priority LOW: runs after IFRUnrollWarmupHook (NORMAL) has set the phase,
    in ``before_train`` and in the first ``before_train_iter``. The first
    iteration's solve (``nfev`` of the forward solve, ``None`` when unrolled)
    is recorded after it ran.
    """
    priority = 'LOW'

    def __init__(self, out_file=None):
        self.out_file = out_file
        self.record = {}

    def _save(self):
        if self.out_file:
            torch.save(self.record, self.out_file)

    def before_train(self, runner):
        self.record['before_train'] = dict(
            iter=runner.iter,
            phase=_refiner_phase(runner),
            # A copy: state_dict() references the live momentum buffers.
            optimizer=copy.deepcopy(runner.optim_wrapper.state_dict()),
            state_dict={k: v.detach().cpu().clone()
                        for k, v in _bare(runner.model).state_dict().items()})
        self._save()

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if 'first_iter' not in self.record:
            self.record['first_iter'] = dict(iter=runner.iter, phase=_refiner_phase(runner))
            self._save()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if 'first_iter_solve' not in self.record:
            solves = {}
            for name, r in find_refiners(runner.model).items():
                stats = r.deq.last_stats
                solves[name] = dict(
                    fwd_nfev=stats.forward.nfev if stats is not None else None,
                    has_backward=stats is not None and stats.backward is not None)
            self.record['first_iter_solve'] = solves
            self._save()


@HOOKS.register_module()
class ParamHashHook(Hook):
    """Each rank appends ``{iter, hash}`` of its parameters after every step."""
    priority = 'LOWEST'

    def __init__(self, out_dir=None):
        self.out_dir = out_dir

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        rank, world_size = get_dist_info()
        digest = hashlib.sha256()
        refiner_digest = hashlib.sha256()
        for name, p in _bare(runner.model).named_parameters():
            data = p.detach().cpu().contiguous().numpy().tobytes()
            digest.update(name.encode())
            digest.update(data)
            if '.convs.' in name:
                refiner_digest.update(data)
        with open(osp.join(self.out_dir, f'hash_rank{rank}.jsonl'), 'a') as f:
            f.write(json.dumps(dict(
                rank=rank, world_size=world_size, iter=runner.iter + 1,
                backend=(torch.distributed.get_backend()
                         if torch.distributed.is_initialized() else None),
                wrapped=is_model_wrapper(runner.model),
                hash=digest.hexdigest(), refiner_hash=refiner_digest.hexdigest(),
                loss=float(outputs['loss']))) + '\\n')


@HOOKS.register_module()
class AmpProbeHook(Hook):
    """Record dtypes inside the IFR refiners during mixed-precision training.

    Forward hooks on each refiner block's convs record their output dtype;
    after every iteration the dtypes of the forward/backward solver statistics
    (the solver state's dtype) and of the refiner output are recorded.
    """
    priority = 'LOWEST'

    def __init__(self, out_file=None):
        self.out_file = out_file
        self.conv_dtypes = set()
        self.refiner_out_dtypes = set()
        self.iters = []

    def before_train(self, runner):
        for refiner in find_refiners(runner.model).values():
            for conv in (refiner.block.conv1, refiner.block.conv2):
                conv.register_forward_hook(
                    lambda m, i, o: self.conv_dtypes.add(str(o.dtype)))
            refiner.register_forward_hook(
                lambda m, i, o: self.refiner_out_dtypes.add(str(o.dtype)))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        record = dict(iter=runner.iter + 1, optim_wrapper=type(runner.optim_wrapper).__name__,
                      loss=float(outputs['loss']))
        for refiner in find_refiners(runner.model).values():
            stats = refiner.deq.last_stats
            record['mode'] = refiner.effective_mode
            if stats is not None and refiner.effective_mode == 'deq':
                record['fwd_state_dtype'] = str(stats.forward.abs_residual.dtype)
                if stats.backward is not None:
                    record['bwd_state_dtype'] = str(stats.backward.abs_residual.dtype)
        record['conv_dtypes'] = sorted(self.conv_dtypes)
        record['refiner_out_dtypes'] = sorted(self.refiner_out_dtypes)
        self.conv_dtypes.clear()
        self.refiner_out_dtypes.clear()
        self.iters.append(record)
        with open(self.out_file, 'w') as f:
            json.dump(self.iters, f)


@HOOKS.register_module()
class RefinerBatchProbeHook(Hook):
    """Record the batch size (number of RoIs) of every refiner call.

    Works for training and testing runs (``before_run``/``after_run``);
    ``out_file`` may contain ``{rank}``.
    """

    def __init__(self, out_file=None):
        self.out_file = out_file
        self.calls = []

    def before_run(self, runner):
        for name, refiner in find_refiners(runner.model).items():
            refiner.register_forward_pre_hook(
                lambda m, args, name=name: self.calls.append(
                    dict(name=name, training=m.training, rois=int(args[0].shape[0]))))

    def after_run(self, runner):
        # ``{rank}`` in the file name: one file per process.
        with open(self.out_file.format(rank=get_dist_info()[0]), 'w') as f:
            json.dump(self.calls, f)
'''


def write_engine_probe_module(directory: str) -> str:
    """Write ``mmifr_engine_probes.py`` into ``directory`` (put it on PYTHONPATH).

    Contents: ``NaNInjectingBlock`` (a block whose forward solve meets NaN),
    ``KillAtIterHook(kill_at)``, ``PhaseProbeHook(out_file)``,
    ``ParamHashHook(out_dir)``, ``AmpProbeHook(out_file)`` and
    ``RefinerBatchProbeHook(out_file)``.

    Returns:
        str: The module name, for ``custom_imports``.
    """
    with open(osp.join(directory, ENGINE_PROBE_MODULE + '.py'), 'w') as f:
        f.write(_ENGINE_PROBE_SOURCE)
    return ENGINE_PROBE_MODULE


@pytest.fixture(scope='session')
def ifr_config_writer(mmdet_configs_resolvable):
    """:func:`write_tiny_ifr_config`."""
    return write_tiny_ifr_config


@pytest.fixture(scope='session')
def engine_probe_writer():
    """:func:`write_engine_probe_module`."""
    return write_engine_probe_module


@pytest.fixture(scope='session')
def tool_runner():
    """``run_tool`` of ``tests/test_tools/conftest.py``."""
    return run_tool


@pytest.fixture(scope='session')
def annotation_dropper():
    """:func:`drop_annotations`."""
    return drop_annotations


@pytest.fixture(scope='session')
def tool_runner_unchecked():
    """:func:`run_tool_unchecked`."""
    return run_tool_unchecked


@pytest.fixture(scope='session')
def mmdet_configs_resolvable():
    """See ``tests/test_tools/conftest.py``."""
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        pytest.fail("pkg_resources is missing, so mmengine cannot resolve 'mmdet::' configs: "
                    "install 'setuptools<81' (requirements/build.txt) in the environment.")
