"""The deep-equilibrium op: solve ``h* = f(h*, x)`` and differentiate through it.

Forward runs a root solver without building an autograd graph. Backward uses
the implicit function theorem: with ``J = df/dh`` at ``h*``, the adjoint
``g = dL/dh* + g J`` is solved with a solver of its own, then
``dL/d(x, theta) = g df/d(x, theta)``. Training memory is therefore one
evaluation of ``f`` plus the solver history, whatever the iteration limit.

Three gradient modes share the same forward:

* ``'ift'``: exact implicit gradient (the paper's).
* ``'phantom'``: ``k`` damped, differentiable steps from ``h*``
  (Geng et al. 2021): cheaper, inexact.
* the ``'unroll'`` *solver* is not a DEQ at all: ``max_iter`` weight-shared
  applications with ordinary autograd (the paper's "implicit unrolling" and the
  reference code's warm-up stage); its memory grows with ``max_iter``.

Nothing here imports mmdet: the op serves any module ``f(h, x)`` whose samples
are independent along dim 0.
"""
import inspect
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .solvers import SOLVERS, STOP_MODES, SolverStats, get_solver, resolve_history_dtype

GRAD_MODES = ('ift', 'phantom')
#: What the op returns: the solver's best iterate ``z``, or ``f(z)`` (free:
#: the solver evaluated it already; closer to the fixed point when ``f`` is a
#: contraction, which matters most for short test-time solves).
OUTPUTS = ('z', 'fz')
UNROLL = 'unroll'


@dataclass
class DEQStats:
    """Statistics of one call of the op.

    Attributes:
        forward (SolverStats): the forward solve.
        backward (SolverStats, optional): the adjoint solve, filled in when
            backward has run with ``grad='ift'``.
    """
    forward: SolverStats
    backward: Optional[SolverStats] = None

    def summary(self) -> dict:
        out = self.forward.summary('fwd_')
        if self.backward is not None:
            out.update(self.backward.summary('bwd_'))
        return out


def _solver_options(name: str) -> Optional[Tuple[str, ...]]:
    """The keyword options of a registered solver beyond the common ones
    (``None`` if it takes ``**kwargs``, i.e. any option)."""
    params = inspect.signature(get_solver(name)).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return None
    common = ('func', 'z0', 'max_iter', 'tol', 'stop_mode', 'return_fz')
    return tuple(k for k in params if k not in common)


def _check_positive(name: str, value, kind=(int, )) -> None:
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
        raise ValueError(f'{name} must be a positive {kind[0].__name__}, got {value!r}')


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f'{name}={value!r} is not supported; allowed values: {sorted(choices)}')


@dataclass(frozen=True)
class SolverConfig:
    """One solve's settings, validated on construction.

    Args:
        solver (str): a name in :data:`~mmifr.ops.solvers.SOLVERS`.
        max_iter (int): evaluations of ``f`` at most.
        tol (float): per-sample tolerance on the residual.
        stop_mode (str): ``'rel'`` (``||f(h)-h|| / ||f(h)||``) or ``'abs'``.
        kwargs (tuple): extra solver options as ``((key, value), ...)``.
        return_fz (bool): return ``f`` of the best iterate instead of it.
        chunk_size (int, optional): solve at most this many samples at a time
            (see :func:`deq_fixed_point`); ``None``: the whole batch at once.
    """
    solver: str = 'broyden'
    max_iter: int = 15
    tol: float = 1e-3
    stop_mode: str = 'rel'
    kwargs: Tuple = ()
    return_fz: bool = False
    chunk_size: Optional[int] = None

    def __post_init__(self):
        _check_choice('solver', self.solver, SOLVERS)
        _check_positive('max_iter', self.max_iter)
        _check_positive('tol', self.tol, (float, int))
        _check_choice('stop_mode', self.stop_mode, STOP_MODES)
        if self.chunk_size is not None:
            _check_positive('chunk_size', self.chunk_size)
        # Extra options are checked here, not at the first solve: a typo
        # would otherwise only surface as a TypeError deep inside training.
        options = _solver_options(self.solver)
        if self.return_fz and options is not None and 'return_fz' not in inspect.signature(
                get_solver(self.solver)).parameters:
            raise ValueError(f"output='fz' needs a solver that takes return_fz; the "
                             f'{self.solver!r} solver does not')
        for key, value in self.kwargs:
            if options is not None and key not in options:
                raise ValueError(f'solver option {key!r} is not accepted by the {self.solver!r} '
                                 f'solver; allowed options: {sorted(options)}')
            if key == 'memory' and value is not None:
                _check_positive('memory', value)
            if key == 'history_dtype':
                resolve_history_dtype(value, torch.float32)

    def solve(self, func, z0: Tensor) -> Tuple[Tensor, SolverStats]:
        solver = get_solver(self.solver)
        kwargs = dict(
            max_iter=self.max_iter, tol=self.tol, stop_mode=self.stop_mode, **dict(self.kwargs))
        if self.return_fz:
            kwargs['return_fz'] = True
        device_type = z0.device.type
        if not torch.is_autocast_enabled(device_type):
            return solver(func, z0, **kwargs)
        # Under autocast the solver's own einsum/bmm would run in half
        # precision and mix dtypes in its state; ``func`` re-enables autocast
        # for the block itself (see ``_Injected``).
        with torch.autocast(device_type, enabled=False):
            return solver(func, z0, **kwargs)


def _state_dtype(x: Tensor) -> torch.dtype:
    """Solver state stays at least fp32 (fp16 history overflows), fp64 if given."""
    return torch.promote_types(x.dtype, torch.float32)


def _autocast_state(device_type: str) -> Tuple[bool, torch.dtype]:
    return (torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type))


def _chunks(batch: int, chunk_size: Optional[int]) -> List[slice]:
    if not chunk_size or chunk_size >= batch:
        return [slice(0, batch)]
    return [slice(i, min(i + chunk_size, batch)) for i in range(0, batch, chunk_size)]


def _merge_stats(parts: List[SolverStats]) -> SolverStats:
    """One record for a batch solved in chunks (``nfev`` adds up)."""
    if len(parts) == 1:
        return parts[0]
    return SolverStats(
        nstep=torch.cat([p.nstep for p in parts]),
        abs_residual=torch.cat([p.abs_residual for p in parts]),
        rel_residual=torch.cat([p.rel_residual for p in parts]),
        converged=torch.cat([p.converged for p in parts]),
        nonfinite=torch.cat([p.nonfinite for p in parts]),
        nfev=sum(p.nfev for p in parts))


def _solve(cfg: SolverConfig, func: Callable, x: Tensor, h0: Tensor) -> Tuple[Tensor, SolverStats]:
    """Forward solve (no graph) of ``h = func(h, x)``, chunk by chunk.

    Samples are independent, so solving them in chunks gives the same
    iterates while the solver state (the Broyden history above all) only
    ever exists for one chunk.
    """
    dtype = _state_dtype(x)
    slices = _chunks(x.shape[0], cfg.chunk_size)
    if len(slices) == 1:
        z, stats = cfg.solve(_Injected(func, x, dtype), h0.flatten(1).to(dtype))
        return z.view_as(x).to(x.dtype), stats
    out = torch.empty_like(x)
    parts = []
    for sl in slices:
        z, stats = cfg.solve(_Injected(func, x[sl], dtype), h0[sl].flatten(1).to(dtype))
        out[sl] = z.view_as(out[sl])
        parts.append(stats)
    return out, _merge_stats(parts)


class _Injected:
    """``f(., x)`` restricted to the active rows, as the solvers call it.

    Gathers ``x`` only when the active set changes, not at every step. The
    caller's autocast state is captured here and restored around ``func``,
    because :meth:`SolverConfig.solve` turns autocast off for the solver.
    """

    def __init__(self, func: Callable, x: Tensor, dtype: torch.dtype) -> None:
        self.func, self.x, self.dtype = func, x, dtype
        self.shape = x.shape[1:]
        self._index: Optional[Tensor] = None
        self._x_active = x
        self.device_type = x.device.type
        self.autocast, self.autocast_dtype = _autocast_state(self.device_type)

    def __call__(self, z: Tensor, index: Tensor) -> Tensor:
        if self._index is None or self._index.shape != index.shape:
            self._index = index
            self._x_active = self.x if index.numel() == self.x.shape[0] else self.x[index]
        h = z.view(-1, *self.shape).to(self.x.dtype)
        if not self.autocast:
            return self.func(h, self._x_active).flatten(1).to(self.dtype)
        with torch.autocast(self.device_type, dtype=self.autocast_dtype):
            return self.func(h, self._x_active).flatten(1).to(self.dtype)


class DEQFunction(torch.autograd.Function):
    """Fixed point of ``func(h, x)`` with an implicit (IFT) backward.

    ``params`` must list every tensor ``func`` uses that needs a gradient
    (typically ``module.parameters()``): autograd only sees the Function's
    explicit inputs.
    """

    @staticmethod
    def forward(ctx, func: Callable, x: Tensor, h0: Tensor, fwd: SolverConfig,
                bwd: SolverConfig, stats: DEQStats, *params: Tensor) -> Tensor:
        with torch.no_grad():
            h_star, stats.forward = _solve(fwd, func, x, h0)
        ctx.func, ctx.bwd, ctx.stats, ctx.params = func, bwd, stats, params
        ctx.autocast = (x.device.type, *_autocast_state(x.device.type))
        ctx.save_for_backward(h_star, x)
        return h_star

    @staticmethod
    def backward(ctx, grad_h: Tensor):
        h_star, x = ctx.saved_tensors
        need_x = x.requires_grad
        params = [p for p in ctx.params if p.requires_grad]
        grad_x = torch.empty_like(x) if need_x else None
        grad_params: List[Optional[Tensor]] = [None] * len(params)
        parts = []
        # Chunks (bwd.chunk_size) bound the graph of f, the adjoint solver's
        # state and the VJP temporaries to one chunk at a time.
        for sl in _chunks(x.shape[0], ctx.bwd.chunk_size):
            gx, gps, stats = DEQFunction._backward_chunk(ctx, h_star[sl], x[sl], grad_h[sl],
                                                         params, need_x)
            if need_x:
                grad_x[sl] = gx
            grad_params = [
                gp if acc is None else (acc if gp is None else acc.add_(gp))
                for acc, gp in zip(grad_params, gps)
            ]
            parts.append(stats)
        ctx.stats.backward = _merge_stats(parts)
        grads = iter(grad_params)
        out_params = [next(grads) if p.requires_grad else None for p in ctx.params]
        out_params = [
            torch.zeros_like(p) if gp is None and p.requires_grad else gp
            for p, gp in zip(ctx.params, out_params)
        ]
        return (None, grad_x, None, None, None, None, *out_params)

    @staticmethod
    def _backward_chunk(ctx, h_star: Tensor, x: Tensor, grad_h: Tensor, params: List[Tensor],
                        need_x: bool):
        device_type, autocast_on, autocast_dtype = ctx.autocast
        dtype = _state_dtype(x)
        with torch.enable_grad(), torch.autocast(
                device_type, dtype=autocast_dtype, enabled=autocast_on):
            h = h_star.detach().requires_grad_()
            x_ = x.detach().requires_grad_(need_x)
            fh = ctx.func(h, x_)
        grad = grad_h.flatten(1).to(dtype)
        batch = grad.shape[0]

        def adjoint(g: Tensor, index: Tensor) -> Tensor:
            # vjp rows depend only on the same rows of g (independent samples),
            # so inactive rows are zero-filled rather than re-evaluated.
            if index.numel() == batch:
                v = g
            else:
                v = g.new_zeros(grad.shape)
                v[index] = g
            vjp, = torch.autograd.grad(fh, h, v.view_as(fh).to(fh.dtype), retain_graph=True)
            del v
            vjp = vjp.flatten(1)
            if index.numel() == batch:
                # vjp is fresh: add in place (one (b, D) temporary less).
                return vjp.to(dtype).add_(grad)
            return vjp[index].to(dtype).add_(grad[index])

        g, stats = ctx.bwd.solve(adjoint, torch.zeros_like(grad))
        inputs = ([x_] if need_x else []) + params
        grads = iter(
            torch.autograd.grad(
                fh, inputs, g.view_as(fh).to(fh.dtype), allow_unused=True) if inputs else ())
        gx = next(grads) if need_x else None
        return gx, list(grads), stats


def zero_start(x: Tensor) -> Tensor:
    """``H0 = 0`` shaped like ``x``, as a broadcast scalar: it holds no
    memory, also where a checkpointed first evaluation keeps its input
    (``with_cp``)."""
    return x.new_zeros(()).expand_as(x)


def _unroll(func: Callable,
            x: Tensor,
            h0: Tensor,
            steps: int,
            states: Optional[List[Tensor]] = None) -> Tuple[Tensor, SolverStats]:
    """``steps`` differentiable applications of ``func``; each iterate is
    appended to ``states`` when a list is given (the trajectory a loss on
    the iterates needs). The statistics stay on the device: no host sync."""
    h = h0
    for _ in range(steps):
        h_prev, h = h, func(h, x)
        if states is not None:
            states.append(h)
    with torch.no_grad():
        diff = (h - h_prev).flatten(1).float()
        abs_res = diff.norm(dim=1)
        rel_res = abs_res / (h.flatten(1).float().norm(dim=1) + 1e-8)
    n = x.shape[0]
    finite = torch.isfinite(abs_res)
    stats = SolverStats(
        nstep=torch.full((n, ), steps, dtype=torch.long, device=x.device),
        abs_residual=abs_res,
        rel_residual=rel_res,
        converged=torch.zeros(n, dtype=torch.bool, device=x.device),
        nonfinite=~finite,
        nfev=steps)
    return h, stats


def deq_fixed_point(func: Callable,
                    x: Tensor,
                    params: Sequence[Tensor] = (),
                    h0: Optional[Tensor] = None,
                    solver: str = 'broyden',
                    max_iter: int = 15,
                    tol: float = 1e-3,
                    stop_mode: str = 'rel',
                    solver_kwargs: Optional[dict] = None,
                    grad: str = 'ift',
                    backward_solver: Optional[str] = None,
                    backward_max_iter: int = 15,
                    backward_tol: float = 1e-3,
                    backward_solver_kwargs: Optional[dict] = None,
                    phantom_steps: int = 1,
                    phantom_damping: float = 1.0,
                    output: str = 'z',
                    chunk_size: Optional[int] = None,
                    states: Optional[List[Tensor]] = None) -> Tuple[Tensor, DEQStats]:
    """Solve ``h* = func(h*, x)`` for every sample of a batch.

    Args:
        func: the block, ``func(h, x) -> h'`` with ``h``, ``x`` and ``h'`` of
            the same shape ``(N, ...)``; samples along dim 0 must not interact.
        x (Tensor): ``(N, ...)`` the injection (e.g. RoI features ``(N, C, H, W)``).
        params (Sequence[Tensor]): tensors inside ``func`` that need gradients.
        h0 (Tensor, optional): ``(N, ...)`` initial guess, zeros by default.
        solver (str): ``'broyden'``, ``'anderson'``, ``'fixed_point'`` or
            ``'unroll'`` (``max_iter`` differentiable applications, no solver).
        max_iter (int): forward evaluations of ``func`` at most (paper: 15).
        tol (float): per-sample forward tolerance.
        stop_mode (str): ``'rel'`` or ``'abs'`` residual.
        solver_kwargs (dict, optional): e.g. ``dict(memory=5)``.
        grad (str): ``'ift'`` (implicit differentiation) or ``'phantom'``.
        backward_solver (str, optional): solver of the adjoint system; the
            forward one by default (``'broyden'`` when forward is ``'unroll'``).
        backward_max_iter (int): adjoint iterations at most (paper: 15).
        backward_tol (float): adjoint tolerance.
        backward_solver_kwargs (dict, optional): options of the adjoint solver.
        phantom_steps (int): differentiable steps of ``grad='phantom'``.
        phantom_damping (float): step size ``lambda`` in
            ``h <- (1 - lambda) h + lambda f(h, x)`` of ``grad='phantom'``.
        output (str): ``'z'`` returns the forward solver's lowest-residual
            iterate ``z`` (its statistics describe it), ``'fz'`` returns
            ``func(z, x)``, already computed by the solver, i.e. one more
            refinement step for free. No effect with ``solver='unroll'``.
        chunk_size (int, optional): solve (forward and adjoint) at most this
            many samples at a time. The samples are independent, so the result
            is the same; the solver state, and in backward the graph of
            ``func`` and its VJP temporaries, then exist for one chunk only,
            which bounds the op's memory whatever the batch. ``None``: the
            whole batch at once.
        states (list, optional): with ``solver='unroll'``, every iterate
            ``h_1 .. h_K`` (``(N, ...)`` each, in the graph) is appended to
            this list: the trajectory that a loss on the iterates (fixed-point
            correction) supervises. Solvers keep only their best iterate, so
            other solvers refuse it.

    Returns:
        tuple[Tensor, DEQStats]: ``(N, ...)`` the fixed point, and the solve's
        statistics (``stats.backward`` appears once backward has run).
    """
    _check_choice('grad', grad, GRAD_MODES)
    _check_choice('output', output, OUTPUTS)
    _check_choice('solver', solver, (*SOLVERS, UNROLL))
    _check_positive('max_iter', max_iter)
    # SolverConfig validates these too, but under its own field names; checked
    # here so that errors name the argument the caller actually passed (and
    # 'unroll', which builds no forward SolverConfig, is validated as well).
    _check_positive('tol', tol, (float, int))
    _check_choice('stop_mode', stop_mode, STOP_MODES)
    if backward_solver is not None:
        _check_choice('backward_solver', backward_solver, SOLVERS)
    _check_positive('backward_max_iter', backward_max_iter)
    _check_positive('backward_tol', backward_tol, (float, int))
    _check_positive('phantom_steps', phantom_steps)
    if not 0 < phantom_damping <= 1:
        raise ValueError(f'phantom_damping must be in (0, 1], got {phantom_damping!r}')
    # chunk_size is validated by the SolverConfig built here on every call.
    bwd = SolverConfig(
        backward_solver or (solver if solver != UNROLL else 'broyden'),
        backward_max_iter,
        backward_tol,
        stop_mode,
        tuple(sorted((backward_solver_kwargs or {}).items())),
        chunk_size=chunk_size)
    if states is not None and solver != UNROLL:
        raise ValueError(f"states (the iterates of a solve) need solver='unroll'; the "
                         f'{solver!r} solver keeps only its best iterate')
    if solver == UNROLL:
        h, stats = _unroll(func, x, zero_start(x) if h0 is None else h0, max_iter, states)
        return h, DEQStats(stats)
    h0 = torch.zeros_like(x) if h0 is None else h0
    fwd = SolverConfig(solver, max_iter, tol, stop_mode,
                       tuple(sorted((solver_kwargs or {}).items())), output == 'fz', chunk_size)
    stats = DEQStats(forward=None)
    if x.shape[0] == 0:
        # Nothing to solve; one differentiable evaluation keeps every parameter
        # in the graph (zero gradients), which DDP needs.
        h, stats.forward = _unroll(func, x, h0, 1)
        return h, stats
    if grad == 'ift' and torch.is_grad_enabled():
        h = DEQFunction.apply(func, x, h0, fwd, bwd, stats, *params)
        return h, stats
    with torch.no_grad():
        h, stats.forward = _solve(fwd, func, x, h0)
    if grad == 'phantom' and torch.is_grad_enabled():
        for _ in range(phantom_steps):
            h = (1 - phantom_damping) * h + phantom_damping * func(h, x)
    return h, stats


class DEQFixedPoint(nn.Module):
    """Module form of :func:`deq_fixed_point`, in the style of mmcv's op modules.

    It holds the solver settings only; the block is passed at call time, so the
    block's owner keeps its parameters. The statistics of the latest call are
    kept in :attr:`last_stats` (the backward part is filled in during backward).

    Args:
        solver (str): forward solver, see :func:`deq_fixed_point`.
        max_iter (int): forward iteration limit.
        tol (float): forward tolerance.
        stop_mode (str): ``'rel'`` or ``'abs'``.
        grad (str): ``'ift'`` or ``'phantom'``.
        backward_solver (str, optional): adjoint solver.
        backward_max_iter (int): adjoint iteration limit.
        backward_tol (float): adjoint tolerance.
        solver_kwargs (dict, optional): forward solver options.
        backward_solver_kwargs (dict, optional): adjoint solver options.
        phantom_steps (int): steps of the phantom gradient.
        phantom_damping (float): damping of the phantom gradient.
        output (str): ``'z'`` (best iterate) or ``'fz'`` (``F`` of it).
        chunk_size (int, optional): samples solved at a time (memory bound).

    Example:
        >>> block = nn.Conv2d(8, 8, 3, padding=1)
        >>> deq = DEQFixedPoint(solver='anderson', max_iter=20)
        >>> x = torch.randn(4, 8, 14, 14)
        >>> h = deq(lambda h, x: torch.tanh(0.1 * block(h) + x), x,
        ...         params=list(block.parameters()))
        >>> deq.last_stats.forward.nstep.shape
        torch.Size([4])
    """

    def __init__(self,
                 solver: str = 'broyden',
                 max_iter: int = 15,
                 tol: float = 1e-3,
                 stop_mode: str = 'rel',
                 grad: str = 'ift',
                 backward_solver: Optional[str] = None,
                 backward_max_iter: int = 15,
                 backward_tol: float = 1e-3,
                 solver_kwargs: Optional[dict] = None,
                 backward_solver_kwargs: Optional[dict] = None,
                 phantom_steps: int = 1,
                 phantom_damping: float = 1.0,
                 output: str = 'z',
                 chunk_size: Optional[int] = None) -> None:
        super().__init__()
        self.options = dict(
            solver=solver,
            max_iter=max_iter,
            tol=tol,
            stop_mode=stop_mode,
            grad=grad,
            backward_solver=backward_solver,
            backward_max_iter=backward_max_iter,
            backward_tol=backward_tol,
            solver_kwargs=dict(solver_kwargs or {}),
            backward_solver_kwargs=dict(backward_solver_kwargs or {}),
            phantom_steps=phantom_steps,
            phantom_damping=phantom_damping,
            output=output,
            chunk_size=chunk_size)
        # Fail at build time, not at the first forward.
        deq_fixed_point(lambda h, x: h, torch.zeros(0, 1), **self.options)
        self.last_stats: Optional[DEQStats] = None

    def forward(self,
                func: Callable,
                x: Tensor,
                params: Sequence[Tensor] = (),
                h0: Optional[Tensor] = None,
                states: Optional[List[Tensor]] = None,
                **overrides) -> Tensor:
        """Solve for ``x`` of shape ``(N, ...)``; ``overrides`` replace options
        for this call only (e.g. ``max_iter`` at test time); ``states`` as in
        :func:`deq_fixed_point`."""
        options = {**self.options, **overrides} if overrides else self.options
        h, self.last_stats = deq_fixed_point(
            func, x, params=params, h0=h0, states=states, **options)
        return h

    def extra_repr(self) -> str:
        keys = ('solver', 'max_iter', 'tol', 'stop_mode', 'grad', 'backward_max_iter')
        return ', '.join(f'{k}={self.options[k]!r}' for k in keys)
