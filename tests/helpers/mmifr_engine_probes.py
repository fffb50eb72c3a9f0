"""Test-only blocks and hooks for the IFR training-behaviour tests.

A training run loads them with ``custom_imports`` (``tiny_configs.ifr_config_source(imports=
['mmifr_engine_probes'])``): ``tool_runs.run_tool`` puts this folder on the subprocess's
``PYTHONPATH``. Contents: ``NaNInjectingBlock`` (a block whose forward solve meets NaN),
``KillAtIterHook(kill_at)``, ``PhaseProbeHook(out_file)``, ``ParamHashHook(out_dir)``,
``AmpProbeHook(out_file)`` and ``RefinerBatchProbeHook(out_file)``.
"""
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
                loss=float(outputs['loss']))) + '\n')


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
