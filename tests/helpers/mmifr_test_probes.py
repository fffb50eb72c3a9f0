"""Hooks that let the tests look inside a training subprocess.

A training run loads them with ``custom_imports=dict(imports=['mmifr', 'mmifr_test_probes'])``:
``tool_runs.run_tool`` puts this folder on the subprocess's ``PYTHONPATH``.

- ``ResumeProbeHook(out_file)`` saves iter, weights, optimizer and scheduler states in
  ``before_train`` (i.e. after resuming);
- ``DistProbeHook(out_dir)`` writes ``probe_rank{rank}.json`` after training.
"""
import json
import os.path as osp

import torch
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


def _bare(model):
    return model.module if is_model_wrapper(model) else model


@HOOKS.register_module()
class ResumeProbeHook(Hook):
    """Save the state training (re)starts from: runs after ``load_or_resume``."""

    def __init__(self, out_file):
        self.out_file = out_file

    def before_train(self, runner):
        torch.save(
            dict(
                iter=runner.iter,
                epoch=runner.epoch,
                state_dict={k: v.detach().cpu().clone()
                            for k, v in _bare(runner.model).state_dict().items()},
                optimizer=runner.optim_wrapper.state_dict(),
                param_schedulers=[s.state_dict() for s in runner.param_schedulers]),
            self.out_file)


@HOOKS.register_module()
class DistProbeHook(Hook):
    """Write each rank's view of the run, and a weight fingerprint, as JSON."""

    def __init__(self, out_dir):
        self.out_dir = out_dir

    def after_train(self, runner):
        rank, world_size = get_dist_info()
        backend = (torch.distributed.get_backend()
                   if torch.distributed.is_initialized() else None)
        params = [p.detach().double() for p in _bare(runner.model).parameters()]
        with open(osp.join(self.out_dir, f'probe_rank{rank}.json'), 'w') as f:
            json.dump(
                dict(
                    rank=rank,
                    world_size=world_size,
                    backend=backend,
                    iter=runner.iter,
                    wrapped=is_model_wrapper(runner.model),
                    # DDP keeps replicas identical: equal on all ranks.
                    fingerprint=float(sum(p.sum() + p.abs().sum() for p in params))),
                f)
