"""The Broyden solver as this project first shipped it, kept to measure against.

The benchmark's ``IFR (as released)`` row runs it (registered as
``broyden_v0``, see :func:`register_v0`), copying compaction included
(:class:`CopyingActiveSet`), so that what the current solver code saves shows
as a row of its own.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from mmifr.ops.solvers import SOLVERS, _ActiveSet, register_solver


class CopyingActiveSet(_ActiveSet):
    """The solver's active set with compaction as first released: by copies.

    Each state tensor is replaced by a fresh copy of its kept rows, which
    briefly holds two copies of the history; the core solver now compacts in
    place.
    """

    def compact(self, keep: Tensor, *state: Tensor, borrowed: Tuple[int, ...] = ()
                ) -> Tuple[Tensor, ...]:
        if bool(keep.all()):
            return state
        self.index = self.index[keep]
        return tuple(t[keep] for t in state)


def _low_rank(left: Tensor, right: Tensor, x: Tensor) -> Tensor:
    """``sum_j left_j (right_j . x)``: ``(b, m, D), (b, m, D), (b, D) -> (b, D)``."""
    return torch.einsum('bm,bmd->bd', torch.einsum('bmd,bd->bm', right, x), left)


def broyden_v0(func, z0: Tensor, max_iter: int, tol: float, stop_mode: str = 'rel',
               memory: Optional[int] = None):
    """The Broyden solver as this project first shipped it (for comparison).

    Six passes over the history per step (``B^-1 dg`` and the next step each
    get a product of their own), zero-filled history of ``max_iter`` slots,
    and a copy of the whole state when a sample finishes.

    Args:
        func: ``func(z, index) -> F(z)`` on the still active samples
            ``index``, ``(b, D) -> (b, D)``, as the registered solvers take it.
        z0: Initial guess, ``(B, D)``.
        max_iter: Evaluations of ``func`` at most.
        tol: Stopping tolerance on the residual ``|F(z) - z|``.
        stop_mode: ``'rel'`` (residual relative to ``|F(z)|``) or ``'abs'``.
        memory: History slots (Broyden updates kept); ``None`` for
            ``max_iter``.

    Returns:
        tuple: The lowest-residual iterate ``(B, D)`` and its per-sample
        :class:`~mmifr.ops.solvers.SolverStats`, as the registered solvers.
    """
    memory = memory or max_iter
    active = CopyingActiveSet(z0, tol, stop_mode)
    batch, dim = z0.shape
    us = z0.new_zeros(batch, memory, dim)
    vts = z0.new_zeros(batch, memory, dim)

    def matvec(us, vts, x):
        return -x if us.shape[1] == 0 else _low_rank(us, vts, x).sub_(x)

    def rmatvec(us, vts, x):
        return -x if us.shape[1] == 0 else _low_rank(vts, us, x).sub_(x)

    z = z0
    fz = active.evaluate(func, z)
    g = fz - z
    keep = active.record(z, fz)
    z, g, us, vts = active.compact(keep, z, g, us, vts)
    step = g
    for k in range(1, max_iter):
        if active.empty:
            break
        z = z + step
        fz = active.evaluate(func, z)
        g_new = fz - z
        keep = active.record(z, fz, g_new)
        dg = g_new - g
        g = g_new
        n = min(k - 1, memory)
        vt = rmatvec(us[:, :n], vts[:, :n], step)
        denom = (vt * dg).sum(dim=1, keepdim=True)
        scale = vt.norm(dim=1, keepdim=True) * dg.norm(dim=1, keepdim=True)
        safe = denom.abs() > torch.finfo(denom.dtype).eps * scale
        u = (step - matvec(us[:, :n], vts[:, :n], dg)) / torch.where(
            safe, denom, torch.ones_like(denom))
        slot = (k - 1) % memory
        us[:, slot] = u.masked_fill_(~safe, 0)
        vts[:, slot] = vt.masked_fill_(~safe, 0)
        n = min(k, memory)
        step = g - _low_rank(us[:, :n], vts[:, :n], g)
        z, g, step, us, vts = active.compact(keep, z, g, step, us, vts)
    return active.result()


def register_v0() -> None:
    """Register :func:`broyden_v0` as solver ``'broyden_v0'`` (once)."""
    if 'broyden_v0' not in SOLVERS:
        register_solver('broyden_v0')(broyden_v0)
