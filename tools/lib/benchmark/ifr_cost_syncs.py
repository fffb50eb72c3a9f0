"""The ``syncs`` section of the IFR cost benchmark: host-device waits of one IFR solve.

The R-50 IFR config's mask-head refiner (random weights, ``--sync-rois`` RoI
features ``N(0, 1)`` of 256 x 14 x 14) solves once per setting on
``--device``, after a warm-up solve; :class:`~.syncs.SyncCounter` counts the
synchronisations of the op alone (``deq_fixed_point``), of the refiner's
whole forward (the op plus the refiner's own bookkeeping) and, for the
training solve, of the backward (the adjoint solve).

Settings: the config's inference solve (Broyden with per-RoI stopping), the
paper's full solve at test time, ``K`` plain block evaluations
(``test_solver=dict(solver='unroll', max_iter=K)``) and the training solve
(forward and implicit backward). A fixed-step solve needs no value from the
device, so its op makes no synchronisation; per-RoI stopping needs at least
one per step (which RoIs continue), and the refiner's non-finite check one
per forward.

The functions take the ``argparse`` namespace of
``tools/analysis_tools/benchmark_ifr_cost.py``.
"""
import copy
from argparse import Namespace
from typing import Dict, Optional

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet.registry import MODELS
from mmifr.engine.hooks import find_refiners
from ..models import resolve_config
from ..progress import log
from .solves import PAPER_SOLVER
from .syncs import SyncCounter

#: The config whose mask-head refiner is measured (the fixed budget of
#: ``mask_rcnn_r50_ifr-budget_1x.py`` is the ``unroll K=2`` row).
SYNC_CONFIG = 'configs/ifr/mask_rcnn_r50_ifr_1x.py'
#: Fixed-step inference solves measured: K plain block evaluations.
UNROLL_STEPS = (2, 3)


def sync_settings() -> Dict[str, Optional[dict]]:
    """``{label: test_solver overrides}``; ``None`` marks the training solve."""
    settings = {'test solve (config)': 'config',
                'test solve = training solve (paper)': dict(PAPER_SOLVER)}
    settings.update({f'unroll K={k}': dict(solver='unroll', max_iter=k) for k in UNROLL_STEPS})
    settings['training solve (forward + backward)'] = None
    return settings


def _counts(counter: SyncCounter, prefix: str) -> Dict[str, Optional[int]]:
    return {f'{prefix}_calls': counter.calls, f'{prefix}_cuda': counter.cuda}


def run_syncs(args: Namespace) -> Dict:
    """The report's ``syncs`` section.

    Returns:
        dict: ``config``, ``device``, ``rois`` and per setting under ``rows``:
        ``op_calls`` / ``forward_calls`` / ``backward_calls`` (wrapped Tensor
        operations that wait for the device), the same as PyTorch reports
        them on CUDA (``*_cuda``, ``None`` elsewhere), and the solver steps.
    """
    device = torch.device(args.device)
    cfg = Config.fromfile(resolve_config(SYNC_CONFIG))
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    torch.manual_seed(args.seed)
    # Through the head, so that its defaults (the inference solve) apply.
    head = MODELS.build(copy.deepcopy(cfg.model.roi_head.mask_head))
    (refiner, ) = find_refiners(head).values()
    refiner.init_weights()
    refiner.to(device)
    config_test_solver = refiner.test_solver
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.randn(args.sync_rois, refiner.in_channels, 14, 14, generator=gen).to(device)
    rows = {}
    for label, overrides in sync_settings().items():
        training = overrides is None
        refiner.train(training)
        refiner.set_test_solver(config_test_solver if overrides == 'config' else overrides)

        def op():
            with torch.set_grad_enabled(training):
                return refiner.deq(refiner.block, x, params=list(refiner.block.parameters()),
                                   **refiner.solve_overrides())

        def forward():
            with torch.set_grad_enabled(training):
                return refiner(x.requires_grad_(training))

        warm = forward()  # first calls: CUDA context, cuDNN's choice of kernels
        if training:
            warm.sum().backward()
        refiner.pop_stats()
        with SyncCounter(device) as op_count:
            op()
        with SyncCounter(device) as fwd_count:
            h = forward()
        row = dict(_counts(op_count, 'op'), **_counts(fwd_count, 'forward'))
        if training:
            with SyncCounter(device) as bwd_count:
                h.square().mean().backward()
            row.update(_counts(bwd_count, 'backward'))
        stats = refiner.deq.last_stats
        row['fwd_steps'] = float(stats.forward.nstep.float().mean())
        if stats.backward is not None:
            row['bwd_steps'] = float(stats.backward.nstep.float().mean())
        if not training:
            row['test_solver'] = refiner.test_solver
        refiner.pop_stats()
        x.grad = None
        rows[label] = row
        log(f'[syncs] {label}: {row}')
    return dict(config=SYNC_CONFIG, device=str(device), rois=args.sync_rois,
                weights='random init', rows=rows)
