"""Batched root solvers for fixed-point problems ``z = f(z)``.

Every solver works on a batch of independent problems laid out as ``(B, D)``
and stops each sample on its own: once a sample reaches its tolerance (or its
iterate stops being finite) it leaves the *active set*, its solver state is
dropped, and ``func`` is no longer evaluated on it. ``func`` is therefore called
as ``func(z, index)`` where ``index`` (``(b,)`` long) names the original rows of
the ``b`` active samples in ``z`` (``(b, D)``). Samples must be independent
(true for convs and GroupNorm, not for BatchNorm in training mode).

Each solver returns, per sample, the lowest-residual iterate it saw (or, with
``return_fz=True``, ``f`` of that iterate, which costs no extra evaluation and
is the better estimate when ``f`` is a contraction), and a
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

#: Rows moved per gather in in-place compaction: bounds its temporary.
_COMPACT_CHUNK = 8

#: ``history_dtype`` values accepted by the solvers that keep a history.
HISTORY_DTYPES = {
    'float64': torch.float64,
    'float32': torch.float32,
    'bfloat16': torch.bfloat16,
    'float16': torch.float16,
}


def resolve_history_dtype(value, state_dtype: torch.dtype) -> torch.dtype:
    """``history_dtype`` option -> a torch dtype (``None``: the state's)."""
    if value is None:
        return state_dtype
    if isinstance(value, torch.dtype) and value in HISTORY_DTYPES.values():
        return value
    if isinstance(value, str) and value in HISTORY_DTYPES:
        return HISTORY_DTYPES[value]
    raise ValueError(f'history_dtype={value!r} is not supported; allowed values: '
                     f'{sorted(HISTORY_DTYPES)} or None')


def _compact_rows(t: Tensor, keep_rows: Tensor, first_moved: int) -> Tensor:
    """Move rows ``keep_rows`` (sorted) of ``t`` to its front, in place.

    ``keep_rows[i] >= i``, so copying chunk by chunk from the front never
    overwrites a row that is still to be read; the first ``first_moved`` rows
    are already where they belong. Returns the view of the kept rows.
    """
    n = keep_rows.numel()
    for start in range(first_moved, n, _COMPACT_CHUNK):
        stop = min(start + _COMPACT_CHUNK, n)
        # Advanced indexing gathers into a temporary first, so overlapping
        # source and destination rows within a chunk are safe.
        t[start:stop] = t[keep_rows[start:stop]]
    return t[:n]


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

    def __init__(self, z0: Tensor, tol: float, stop_mode: str, return_fz: bool = False) -> None:
        batch = z0.shape[0]
        self.tol = tol
        self.stop_mode = stop_mode
        self.index = torch.arange(batch, device=z0.device)
        self.best_z = z0.clone()
        # f(best_z), returned instead of best_z with ``return_fz``; a sample
        # without any finite evaluation keeps z0 in both.
        self.best_fz = z0.clone() if return_fz else None
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
        if bool(improved.all()):
            # The common case while a solve converges: one pass per buffer,
            # no gather of the improved rows.
            index = self.index
            self.best_z.index_copy_(0, index, z)
            if self.best_fz is not None:
                self.best_fz.index_copy_(0, index, fz)
            self.best_res.index_copy_(0, index, res)
            self.best_abs.index_copy_(0, index, abs_res)
            self.best_rel.index_copy_(0, index, rel_res)
        else:
            rows = self.index[improved]
            self.best_z[rows] = z[improved]
            if self.best_fz is not None:
                self.best_fz[rows] = fz[improved]
            self.best_res[rows] = res[improved]
            self.best_abs[rows] = abs_res[improved]
            self.best_rel[rows] = rel_res[improved]
        done = finite & (res <= self.tol)
        # Active rows have neither flag set yet (a flagged row leaves the
        # active set), so writing the flags of every active row is exact and
        # needs no boolean gather (no host sync).
        self.converged.index_copy_(0, self.index, done)
        self.nonfinite.index_copy_(0, self.index, ~finite)
        return finite & ~done

    def compact(self, keep: Tensor, *state: Tensor, borrowed: Tuple[int, ...] = ()
                ) -> Tuple[Tensor, ...]:
        """Drop the finished rows from the active index and from ``state``.

        Each state tensor has the active rows along dim 0. Tensors the solver
        allocated itself are compacted in place, the kept rows moved to the
        front of the same buffer, so compaction never holds a second copy of
        the history (a fresh copy would briefly double the solver's memory).
        Tensors at the positions in ``borrowed`` may alias the caller's
        (``z0``, ``func``'s output) and are compacted into fresh ones instead.
        Copies happen only when some row finished, so most iterations cost
        nothing here.
        """
        if bool(keep.all()):
            return state
        self.index = self.index[keep]
        rows = keep.nonzero().flatten()
        # Leading rows that are kept are already in place.
        first_moved = int((~keep).int().argmax()) if rows.numel() else 0
        return tuple(t[keep] if i in borrowed else _compact_rows(t, rows, first_moved)
                     for i, t in enumerate(state))

    def result(self) -> Tuple[Tensor, SolverStats]:
        stats = SolverStats(
            nstep=self.nstep,
            abs_residual=self.best_abs,
            rel_residual=self.best_rel,
            converged=self.converged,
            nonfinite=self.nonfinite,
            nfev=self.nfev)
        return (self.best_z if self.best_fz is None else self.best_fz), stats


@register_solver('fixed_point')
def fixed_point(func: SolverFunc,
                z0: Tensor,
                max_iter: int,
                tol: float,
                stop_mode: str = 'rel',
                return_fz: bool = False) -> Tuple[Tensor, SolverStats]:
    """Plain fixed-point iteration ``z <- f(z)``.

    Args:
        func: ``func(z, index) -> f(z)`` on the active rows, ``(b, D)``.
        z0 (Tensor): ``(B, D)`` initial guess.
        max_iter (int): evaluations of ``f`` at most.
        tol (float): per-sample stopping tolerance on the residual.
        stop_mode (str): ``'rel'`` or ``'abs'`` residual.
        return_fz (bool): return ``f(z)`` of the lowest-residual iterate ``z``
            instead of ``z`` itself (the statistics still describe ``z``).

    Returns:
        tuple[Tensor, SolverStats]: ``(B, D)`` lowest-residual iterates.
    """
    active = _ActiveSet(z0, tol, stop_mode, return_fz)
    z = z0
    for _ in range(max_iter):
        fz = active.evaluate(func, z)
        keep = active.record(z, fz)
        z, = active.compact(keep, fz, borrowed=(0, ))
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
             beta: float = 1.0,
             return_fz: bool = False) -> Tuple[Tensor, SolverStats]:
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
    active = _ActiveSet(z0, tol, stop_mode, return_fz)
    batch, dim = z0.shape
    # Never read before written (only slots [:n] are used): no zero fill.
    xs = z0.new_empty(batch, memory, dim)
    fs = torch.empty_like(xs)
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


def _rowdot(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise dot product ``(b, D), (b, D) -> (b, 1)``.

    ``vecdot`` is a streaming reduction; a batched ``(1 x D) @ (D x 1)``
    matrix product is 4x slower for this shape on CPU (measured).
    """
    return torch.linalg.vecdot(a, b).unsqueeze(1)


def _dots(hist: Tensor, x: Tensor) -> Tensor:
    """``hist_j . x`` for every slot: ``(b, m, D), (b, D) -> (b, m)`` in ``x``'s dtype.

    A low-precision history is read as it is stored (the product runs in its
    dtype, accumulating in fp32 on current CPUs and GPUs); only the small
    result is cast back.
    """
    xh = x if hist.dtype == x.dtype else x.to(hist.dtype)
    if hist.shape[1] == 1:
        # A batched matrix-vector product with one row is slow (see _rowdot).
        out = torch.linalg.vecdot(hist[:, 0], xh).unsqueeze(1)
    else:
        out = torch.einsum('bmd,bd->bm', hist, xh)
    return out.to(x.dtype)


def _combine(hist: Tensor, coef: Tensor) -> Tensor:
    """``sum_j coef_j hist_j``: ``(b, m, D), (b, m) -> (b, D)`` in ``coef``'s dtype."""
    if hist.dtype == coef.dtype:
        return torch.einsum('bm,bmd->bd', coef, hist)
    return torch.einsum('bm,bmd->bd', coef.to(hist.dtype), hist).to(coef.dtype)


# The history is the bulk of the solver's memory traffic (``(b, m, D)`` twice),
# so this reads it once per product and subtracts ``x`` in place on the fresh
# product instead of materialising ``-x`` and a sum.
def _inv_jacobian_rmatvec(us: Tensor, vts: Tensor, x: Tensor) -> Tensor:
    """``x^T B^-1`` for the low-rank inverse Jacobian ``-I + sum_j u_j v_j^T``."""
    if us.shape[1] == 0:
        return -x
    return _combine(vts, _dots(us, x)).sub_(x)


@register_solver('broyden')
def broyden(func: SolverFunc,
            z0: Tensor,
            max_iter: int,
            tol: float,
            stop_mode: str = 'rel',
            memory: Optional[int] = None,
            history_dtype: Optional[str] = None,
            return_fz: bool = False) -> Tuple[Tensor, SolverStats]:
    """Limited-memory ("good") Broyden's method on ``g(z) = f(z) - z = 0``.

    The inverse Jacobian of ``g`` starts at ``-I`` (so the first step is a
    fixed-point step) and receives one rank-one update per evaluation; with
    ``memory`` smaller than ``max_iter`` the oldest updates are overwritten,
    which bounds the history to ``2 * memory * D`` values per sample.

    Each iteration reads the history four times (two products with ``B^-1``,
    ``B^-1 g_new`` and ``step^T B^-1``): since every step is the full Broyden
    step ``-B^-1 g``, the update's ``u`` and the next step are both multiples
    of ``B^-1 g_new`` and need no product of their own.

    Args:
        memory (int, optional): rank-one updates kept; defaults to ``max_iter``.
        history_dtype (str, optional): dtype the history is stored in
            (``'bfloat16'`` halves its memory; the iterate, residuals and
            rank-one coefficients stay in the state's dtype). ``None``: the
            state's dtype (fp32 in the DEQ op).

    See :func:`fixed_point` for the remaining arguments.
    """
    memory = memory or max_iter
    hist_dtype = resolve_history_dtype(history_dtype, z0.dtype)
    active = _ActiveSet(z0, tol, stop_mode, return_fz)
    batch, dim = z0.shape
    # Never read before written (only slots [:n] are used): no zero fill.
    us = z0.new_empty(batch, min(memory, max(max_iter - 1, 1)), dim, dtype=hist_dtype)
    vts = torch.empty_like(us)
    z = z0
    fz = active.evaluate(func, z)
    g = fz - z
    keep = active.record(z, fz)
    del fz
    z, g, us, vts = active.compact(keep, z, g, us, vts, borrowed=(0, ))
    step = g  # -B^-1 g with B^-1 = -I
    for k in range(1, max_iter):
        if active.empty:
            break
        z = z + step
        fz = active.evaluate(func, z)
        g_new = fz - z
        keep = active.record(z, fz, g_new)
        del fz
        n = min(k - 1, memory)
        vt = _inv_jacobian_rmatvec(us[:, :n], vts[:, :n], step)  # step^T B^-1
        if n:
            coef_g = _dots(vts[:, :n], g_new)
            binv_g = _combine(us[:, :n], coef_g).sub_(g_new)  # B^-1 g_new
        else:
            binv_g = -g_new
        dg = g_new - g
        denom = _rowdot(vt, dg)
        # A vanishing denominator means no new curvature information: skip it.
        # "Vanishing" is judged against |vt| |dg|, not in absolute terms: the
        # denominator scales with the squared residual, which is legitimately
        # tiny near convergence and in adjoint solves of averaged losses.
        scale = vt.norm(dim=1, keepdim=True) * dg.norm(dim=1, keepdim=True)
        del dg
        safe = denom.abs() > torch.finfo(denom.dtype).eps * scale
        inv_denom = torch.where(safe, 1 / torch.where(safe, denom, torch.ones_like(denom)),
                                torch.zeros_like(denom))
        vt.mul_(safe)
        # The update is u v^T with u = (dz - B^-1 dg) / denom. The step taken
        # was dz = -B^-1 g, so dz - B^-1 dg = -B^-1 g_new: u is a multiple of
        # binv_g, and so is the next step
        #   -B_new^-1 g_new = -(binv_g + u (v . g_new)) = -binv_g (1 - (v . g_new) / denom),
        # less the evicted update's term once the history is full.
        c = _rowdot(vt, g_new)
        slot = (k - 1) % memory
        evicted = us[:, slot].to(binv_g.dtype) * coef_g[:, slot:slot + 1] \
            if k - 1 >= memory else None
        if us.dtype == binv_g.dtype:
            torch.mul(binv_g, -inv_denom, out=us[:, slot])  # no temporary
        else:
            us[:, slot] = binv_g * -inv_denom
        vts[:, slot] = vt
        del vt
        step = binv_g.mul_(c * inv_denom - 1)
        if evicted is not None:
            step.add_(evicted)
            del evicted
        g = g_new
        z, g, step, us, vts = active.compact(keep, z, g, step, us, vts)
    return active.result()


def get_solver(name: str) -> Callable:
    """Look a solver up by name, with an error that lists the choices."""
    try:
        return SOLVERS[name]
    except KeyError:
        raise ValueError(f'solver={name!r} is not a registered solver; '
                         f'allowed values: {sorted(SOLVERS)}') from None
