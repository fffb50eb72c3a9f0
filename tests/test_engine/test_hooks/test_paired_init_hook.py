"""Tests of :class:`mmifr.engine.hooks.PairedInitHook`: two models of one seed
that differ in one head start their shared parts from the same weights."""
import uuid

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.registry import MODELS
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import DataLoader

from mmifr.engine.hooks import PairedInitHook


@MODELS.register_module(force=True)
class _PairedToyModel(BaseModel):
    """A trunk shared by both models of a pair, then a head of either kind;
    the heavy head draws more at construction (as IFR's block does)."""

    def __init__(self, heavy_head: bool):
        super().__init__(init_cfg=dict(type='Normal', layer='Linear', std=1.0))
        self.trunk = nn.Linear(4, 4)
        self.head = nn.Sequential(nn.Linear(4, 16), nn.Linear(16, 1)) if heavy_head \
            else nn.Linear(4, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.head(self.trunk(torch.stack(inputs)))
        return dict(loss=out.pow(2).mean()) if mode == 'loss' else out


class _KeepInitialTrunk(Hook):

    def before_train(self, runner):
        self.trunk = runner.model.trunk.weight.detach().clone()


def _initial_trunk(tmp_path, heavy_head, hooks, seed=0):
    keep = _KeepInitialTrunk()
    runner = Runner(
        model=dict(type='_PairedToyModel', heavy_head=heavy_head),
        work_dir=str(tmp_path / uuid.uuid4().hex[:8]),
        experiment_name=f'paired_init_{uuid.uuid4().hex[:8]}',
        train_dataloader=DataLoader([torch.randn(4) for _ in range(2)], batch_size=2,
                                    collate_fn=lambda batch: dict(inputs=batch)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.0)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=1),
        custom_hooks=hooks + [keep],
        randomness=dict(seed=seed),
        default_scope='mmdet')
    runner.train()
    return keep.trunk


@pytest.mark.parametrize('with_hook', [False, True])
def test_shared_parts_start_equal_only_with_the_hook(tmp_path, with_hook):
    hooks = [dict(type='PairedInitHook')] if with_hook else []
    light = _initial_trunk(tmp_path, heavy_head=False, hooks=hooks)
    heavy = _initial_trunk(tmp_path, heavy_head=True, hooks=hooks)
    # Without the hook the heavier head's construction shifts the draws.
    assert torch.equal(light, heavy) == with_hook


def test_the_seed_still_decides_the_weights(tmp_path):
    hooks = [dict(type='PairedInitHook')]
    one = _initial_trunk(tmp_path, heavy_head=False, hooks=hooks, seed=1)
    assert torch.equal(one, _initial_trunk(tmp_path, heavy_head=True, hooks=hooks, seed=1))
    assert not torch.equal(one, _initial_trunk(tmp_path, heavy_head=False, hooks=hooks, seed=2))


def test_it_is_registered_in_mmdets_registry():
    from mmdet.registry import HOOKS
    assert HOOKS.get('PairedInitHook') is PairedInitHook
