"""Batched root solvers for fixed-point problems ``z = f(z)``.

Every solver works on a batch of independent problems laid out as ``(B, D)``
and stops each sample on its own: once a sample reaches its tolerance (or its
iterate stops being finite) it leaves the *active set*, its solver state is
dropped, and ``func`` is no longer evaluated on it. ``func`` is therefore called
as ``func(z, index)`` where ``index`` (``(b,)`` long) names the original rows of
the ``b`` active samples in ``z`` (``(b, D)``). Samples must be independent
(true for convs and GroupNorm, not for BatchNorm in training mode).

Each solver returns, per sample, the lowest-residual iterate it saw, and a
:class:`SolverStats` record. Solvers are looked up by name in
:data:`SOLVERS`; :func:`register_solver` adds new ones.
"""
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

SolverFunc = Callable[[Tensor, Tensor], Tensor]

SOLVERS: Dict[str, Callable] = {}
STOP_MODES = ('abs', 'rel')

# Keeps relative residuals finite when f(z) is exactly zero.
_EPS = 1e-8


def register_solver(name: str) -> Callable:
    """Decorator that registers a solver function under ``name``."""

    def _register(fn: Callable) -> Callable:
        if name in SOLVERS:
            raise KeyError(f'solver {name!r} is already registered')
        SOLVERS[name] = fn
        return fn

    return _register


@dataclass
class SolverStats:
    """What one batched solve did, per sample.

    Attributes:
        nstep (Tensor): ``(B,)`` int64, evaluations of ``f`` spent on each sample.
        abs_residual (Tensor): ``(B,)`` ``||f(z) - z||`` of the returned iterate.
        rel_residual (Tensor): ``(B,)`` ``||f(z) - z|| / ||f(z)||`` of it.
        converged (Tensor): ``(B,)`` bool, the sample reached its tolerance.
        nonfinite (Tensor): ``(B,)`` bool, a NaN/Inf appeared in the sample's
            iterates; the returned iterate is then its best *finite* one.
        nfev (int): batched calls of ``f`` (the wall-clock cost driver).
    """
    nstep: Tensor
    abs_residual: Tensor
    rel_residual: Tensor
    converged: Tensor
    nonfinite: Tensor
    nfev: int

    @property
    def batch_size(self) -> int:
        return self.nstep.numel()

    def summary(self, prefix: str = '') -> Dict[str, float]:
        """Batch means as plain floats, ready for a logger."""
        if self.batch_size == 0:
            return {}
        return {
            f'{prefix}nstep': self.nstep.float().mean().item(),
            f'{prefix}nstep_max': float(self.nstep.max().item()),
            f'{prefix}abs_residual': self.abs_residual.mean().item(),
            f'{prefix}rel_residual': self.rel_residual.mean().item(),
            f'{prefix}converged': self.converged.float().mean().item(),
            f'{prefix}nonfinite': float(self.nonfinite.sum().item()),
        }


class _ActiveSet:
    """Per-sample bookkeeping shared by the solvers.

    Tracks which samples are still being solved, the lowest-residual iterate of
    each, and why each one stopped. Solvers call :meth:`record` after every
    evaluation of ``f`` and :meth:`compact` to drop finished rows from their own
    state tensors.
    """

    def __init__(self, z0: Tensor, tol: float, stop_mode: str) -> None:
        batch = z0.shape[0]
        self.tol = tol
        self.stop_mode = stop_mode
        self.index = torch.arange(batch, device=z0.device)
        self.best_z = z0.clone()
        inf = torch.full((batch, ), float('inf'), dtype=z0.dtype, device=z0.device)
        self.best_res = inf.clone()
        self.best_abs = inf.clone()
        self.best_rel = inf
        self.nstep = torch.zeros(batch, dtype=torch.long, device=z0.device)
        self.converged = torch.zeros(batch, dtype=torch.bool, device=z0.device)
        self.nonfinite = torch.zeros_like(self.converged)
        self.nfev = 0

    @property
    def empty(self) -> bool:
        return self.index.numel() == 0

    def evaluate(self, func: SolverFunc, z: Tensor) -> Tensor:
        self.nfev += 1
        self.nstep[self.index] += 1
        return func(z, self.index).to(z.dtype)

    def record(self, z: Tensor, fz: Tensor, residual: Optional[Tensor] = None) -> Tensor:
        """Score the active iterates ``z`` (``(b, D)``) given ``fz = f(z)``.

        Args:
            residual (Tensor, optional): ``fz - z`` if the solver has it
                already (saves a pass over the state).

        Returns:
            Tensor: ``(b,)`` bool, the rows that should keep iterating.
        """
        abs_res = (fz - z if residual is None else residual).norm(dim=1)
        rel_res = abs_res / (fz.norm(dim=1) + _EPS)
        res = rel_res if self.stop_mode == 'rel' else abs_res
        # A NaN anywhere in a row makes its norm NaN, an Inf makes it Inf.
        finite = torch.isfinite(abs_res) & torch.isfinite(rel_res)
        improved = finite & (res < self.best_res[self.index])
        rows = self.index[improved]
        self.best_z[rows] = z[improved]
        self.best_res[rows] = res[improved]
        self.best_abs[rows] = abs_res[improved]
        self.best_rel[rows] = rel_res[improved]
        done = finite & (res <= self.tol)
        self.converged[self.index[done]] = True
        self.nonfinite[self.index[~finite]] = True
        return finite & ~done

    def compact(self, keep: Tensor, *state: Tensor) -> Tuple[Tensor, ...]:
        """Drop the finished rows from the active index and from ``state``.

        Each state tensor has the active rows along dim 0. Copies happen only
        when some row finished, so most iterations cost nothing here.
        """
        if bool(keep.all()):
            return state
        self.index = self.index[keep]
        return tuple(t[keep] for t in state)

    def result(self) -> Tuple[Tensor, SolverStats]:
        stats = SolverStats(
            nstep=self.nstep,
            abs_residual=self.best_abs,
            rel_residual=self.best_rel,
            converged=self.converged,
            nonfinite=self.nonfinite,
            nfev=self.nfev)
        return self.best_z, stats


@register_solver('fixed_point')
def fixed_point(func: SolverFunc, z0: Tensor, max_iter: int, tol: float,
                stop_mode: str = 'rel') -> Tuple[Tensor, SolverStats]:
    """Plain fixed-point iteration ``z <- f(z)``.

    Args:
        func: ``func(z, index) -> f(z)`` on the active rows, ``(b, D)``.
        z0 (Tensor): ``(B, D)`` initial guess.
        max_iter (int): evaluations of ``f`` at most.
        tol (float): per-sample stopping tolerance on the residual.
        stop_mode (str): ``'rel'`` or ``'abs'`` residual.

    Returns:
        tuple[Tensor, SolverStats]: ``(B, D)`` lowest-residual iterates.
    """
    active = _ActiveSet(z0, tol, stop_mode)
    z = z0
    for _ in range(max_iter):
        fz = active.evaluate(func, z)
        keep = active.record(z, fz)
        z, = active.compact(keep, fz)
        if active.empty:
            break
    return active.result()


@register_solver('anderson')
def anderson(func: SolverFunc,
             z0: Tensor,
             max_iter: int,
             tol: float,
             stop_mode: str = 'rel',
             memory: int = 5,
             lam: float = 1e-4,
             beta: float = 1.0) -> Tuple[Tensor, SolverStats]:
    """Anderson acceleration (type II) with a window of ``memory`` iterates.

    The mixing weights solve the constrained least squares problem
    ``min ||sum_i alpha_i g_i||, sum_i alpha_i = 1`` over the last residuals
    ``g_i = f(z_i) - z_i``, with Tikhonov regularisation ``lam`` relative to
    the residuals' scale so it neither vanishes near the solution nor swamps
    large residuals.

    Args:
        memory (int): iterates kept in the window.
        lam (float): relative regularisation of the normal equations.
        beta (float): mixing between ``f(z)`` (1.0) and ``z`` (0.0).

    See :func:`fixed_point` for the remaining arguments.
    """
    active = _ActiveSet(z0, tol, stop_mode)
    batch, dim = z0.shape
    xs = z0.new_zeros(batch, memory, dim)
    fs = z0.new_zeros(batch, memory, dim)
    z = z0
    for k in range(max_iter):
        fz = active.evaluate(func, z)
        slot = k % memory
        xs[:, slot] = z
        fs[:, slot] = fz
        keep = active.record(z, fz)
        xs, fs = active.compact(keep, xs, fs)
        if active.empty or k == max_iter - 1:
            break
        n = min(k + 1, memory)
        if n == 1:
            z = fs[:, 0]
            continue
        g = fs[:, :n] - xs[:, :n]
        gram = torch.bmm(g, g.transpose(1, 2))
        scale = gram.diagonal(dim1=1, dim2=2).amin(dim=1).clamp_min(_EPS**2)
        eye = torch.eye(n, dtype=z0.dtype, device=z0.device)
        b = g.shape[0]
        system = z0.new_zeros(b, n + 1, n + 1)
        system[:, 0, 1:] = 1
        system[:, 1:, 0] = 1
        system[:, 1:, 1:] = gram + lam * scale[:, None, None] * eye
        rhs = z0.new_zeros(b, n + 1, 1)
        rhs[:, 0] = 1
        alpha = torch.linalg.solve(system, rhs)[:, 1:, 0]
        z = torch.einsum('bn,bnd->bd', alpha, fs[:, :n])
        if beta != 1.0:
            z = beta * z + (1 - beta) * torch.einsum('bn,bnd->bd', alpha, xs[:, :n])
    return active.result()


def _low_rank(left: Tensor, right: Tensor, x: Tensor) -> Tensor:
    """``sum_j left_j (right_j . x)``: ``(b, m, D), (b, m, D), (b, D) -> (b, D)``."""
    return torch.einsum('bm,bmd->bd', torch.einsum('bmd,bd->bm', right, x), left)


# The history is the bulk of the solver's memory traffic (``(b, m, D)`` twice),
# so these helpers read it once per product and subtract ``x`` in place on the
# fresh product instead of materialising ``-x`` and a sum.
def _inv_jacobian_matvec(us: Tensor, vts: Tensor, x: Tensor) -> Tensor:
    """``B^-1 x`` for the low-rank inverse Jacobian ``-I + sum_j u_j v_j^T``."""
    if us.shape[1] == 0:
        return -x
    return _low_rank(us, vts, x).sub_(x)


def _inv_jacobian_rmatvec(us: Tensor, vts: Tensor, x: Tensor) -> Tensor:
    """``x^T B^-1`` for the same low-rank inverse Jacobian."""
    if us.shape[1] == 0:
        return -x
    return _low_rank(vts, us, x).sub_(x)


@register_solver('broyden')
def broyden(func: SolverFunc,
            z0: Tensor,
            max_iter: int,
            tol: float,
            stop_mode: str = 'rel',
            memory: Optional[int] = None) -> Tuple[Tensor, SolverStats]:
    """Limited-memory ("good") Broyden's method on ``g(z) = f(z) - z = 0``.

    The inverse Jacobian of ``g`` starts at ``-I`` (so the first step is a
    fixed-point step) and receives one rank-one update per evaluation; with
    ``memory`` smaller than ``max_iter`` the oldest updates are overwritten,
    which bounds the history to ``2 * memory * D`` values per sample.

    Args:
        memory (int, optional): rank-one updates kept; defaults to ``max_iter``.

    See :func:`fixed_point` for the remaining arguments.
    """
    memory = memory or max_iter
    active = _ActiveSet(z0, tol, stop_mode)
    batch, dim = z0.shape
    us = z0.new_zeros(batch, memory, dim)
    vts = z0.new_zeros(batch, memory, dim)
    z = z0
    fz = active.evaluate(func, z)
    g = fz - z
    keep = active.record(z, fz)
    z, g, us, vts = active.compact(keep, z, g, us, vts)
    step = g  # -B^-1 g with B^-1 = -I
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
        vt = _inv_jacobian_rmatvec(us[:, :n], vts[:, :n], step)
        denom = (vt * dg).sum(dim=1, keepdim=True)
        # A vanishing denominator means no new curvature information: skip it.
        # "Vanishing" is judged against |vt| |dg|, not in absolute terms: the
        # denominator scales with the squared residual, which is legitimately
        # tiny near convergence and in adjoint solves of averaged losses.
        scale = vt.norm(dim=1, keepdim=True) * dg.norm(dim=1, keepdim=True)
        safe = denom.abs() > torch.finfo(denom.dtype).eps * scale
        u = (step - _inv_jacobian_matvec(us[:, :n], vts[:, :n], dg)) / torch.where(
            safe, denom, torch.ones_like(denom))
        slot = (k - 1) % memory
        # u and vt are fresh tensors: zero the skipped rows in place.
        us[:, slot] = u.masked_fill_(~safe, 0)
        vts[:, slot] = vt.masked_fill_(~safe, 0)
        n = min(k, memory)
        step = g - _low_rank(us[:, :n], vts[:, :n], g)  # -B^-1 g
        z, g, step, us, vts = active.compact(keep, z, g, step, us, vts)
    return active.result()


def get_solver(name: str) -> Callable:
    """Look a solver up by name, with an error that lists the choices."""
    try:
        return SOLVERS[name]
    except KeyError:
        raise ValueError(f'solver={name!r} is not a registered solver; '
                         f'allowed values: {sorted(SOLVERS)}') from None
