"""The IFR solves a benchmark compares, and how many steps they took."""
import copy
import inspect
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from mmifr.engine.hooks import find_refiners
from mmifr.models.layers import IFRRefiner
from mmifr.models.roi_heads import IFRConvFCMaskHead

#: The paper's solve (and the released code's): Broyden, 15 forward / 15
#: backward steps, relative tolerance 1e-3, full history.
PAPER_SOLVER = dict(solver='broyden', max_iter=15, tol=1e-3, backward_max_iter=15)
#: The equilibrium itself, the reference an inference solve or an iterate is
#: measured against: Broyden to 1e-5 with a full history, its best iterate.
EXACT_SOLVE = dict(
    solver='broyden', max_iter=60, tol=1e-5, output='z', solver_kwargs=dict(memory=60))


def refiner_defaults() -> Tuple[dict, Optional[dict]]:
    """The project's default solves, read from the code that applies them.

    Returns:
        tuple: The default training solve of ``IFRRefiner`` (its ``solver``
        argument) and the default inference solve of the RoI mask heads
        (``IFRConvFCMaskHead.default_test_solver``, ``None`` if it has none);
        copies, free to modify.
    """
    solver = inspect.signature(IFRRefiner.__init__).parameters['solver'].default
    return copy.deepcopy(dict(solver)), copy.deepcopy(IFRConvFCMaskHead.default_test_solver)


def solver_steps(module: nn.Module) -> Dict[str, float]:
    """Pop the solver statistics of the refiners under ``module``.

    Popping empties the refiners' records, so each call covers the forward
    passes since the previous one.

    Args:
        module: A mask head or a whole detector.

    Returns:
        dict: Means over the solved samples (RoIs) of the last refiner with
        records: ``fwd_steps`` and ``fwd_rel_residual`` of the forward solve,
        ``bwd_steps`` of the adjoint solve where one ran; empty without
        records (a stock head, or no forward pass since the last call).
    """
    out = {}
    for refiner in find_refiners(module).values():
        stats = refiner.pop_stats()
        if not stats:
            continue
        fwd = torch.cat([s.forward.nstep for s in stats]).float()
        out['fwd_steps'] = fwd.mean().item()
        res = torch.cat([s.forward.rel_residual for s in stats]).float()
        out['fwd_rel_residual'] = res.mean().item()
        bwd = [s.backward.nstep for s in stats if s.backward is not None]
        if bwd:
            out['bwd_steps'] = torch.cat(bwd).float().mean().item()
    return out
