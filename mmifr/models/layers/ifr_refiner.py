"""The IFR module: what a head runs in place of its stacked 3x3 convs."""
import copy
import inspect
import random
from collections import deque
from typing import Deque, List, Optional, Tuple

import torch
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule, build_activation_layer
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmifr.ops import DEQFixedPoint, DEQStats, jacobian_frobenius, zero_start
from .warm_start import WarmStartMemory

MODES = ('deq', 'unroll', 'explicit')
JAC_REG_KEYS = ('weight', 'num_probes', 'freq', 'ramp_ratio', 'end_ratio')
#: Forwards whose Jacobian losses may wait for :meth:`IFRRefiner.pop_aux_losses`
#: (SOLO refines 5 levels per step, HTC runs its head per stage) before the
#: missing collector is reported.
MAX_QUEUED_AUX_LOSSES = 64
#: The default solve: the paper's Broyden, 15 forward / 15 backward steps to a
#: relative residual of 1e-3, with two memory bounds that do not change what
#: is solved: the history keeps the last 5 rank-one updates (limited-memory
#: Broyden; +0.5 % steps on a trained model), and at most 64 samples are
#: solved at a time (samples are independent: the same result, with solver
#: state and backward graph for one chunk only). See docs/performance.md.
DEFAULT_SOLVER = dict(
    solver='broyden',
    max_iter=15,
    tol=1e-3,
    backward_max_iter=15,
    solver_kwargs=dict(memory=5),
    backward_solver_kwargs=dict(memory=5),
    chunk_size=64)
#: Keys of the ``solver`` / ``test_solver`` dicts (DEQFixedPoint's arguments).
SOLVER_KEYS = tuple(inspect.signature(DEQFixedPoint.__init__).parameters)[1:]


def merge_solve(base: dict, overrides: dict) -> dict:
    """``overrides`` merged onto the solve ``base`` (a partial ``solver`` /
    ``test_solver`` dict).

    Solver options belong to one solver: when ``overrides`` switch to another
    solver without options of their own, ``base``'s ``solver_kwargs`` (and
    ``backward_solver_kwargs``, if the backward solver follows the forward
    one) are not carried over.
    """
    merged = {**base, **overrides}
    new = overrides.get('solver')
    if new is None or new == base.get('solver'):
        return merged
    if 'solver_kwargs' not in overrides:
        merged['solver_kwargs'] = {}
    if (base.get('backward_solver') is None and 'backward_solver' not in overrides
            and 'backward_solver_kwargs' not in overrides):
        merged['backward_solver_kwargs'] = {}
    return merged


def _check_solver_keys(name: str, options: dict) -> None:
    unknown = sorted(set(options) - set(SOLVER_KEYS))
    if unknown:
        raise ValueError(f'{name} has unknown key(s) {unknown}; allowed keys: {list(SOLVER_KEYS)}')


def _checked_float(option: str, key: str, value, valid, must: str) -> float:
    """``value`` of ``option.key`` as a float, refused (named, with what it
    must be) unless it is a number that ``valid`` accepts."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not valid(value):
        raise ValueError(f'{option}.{key} must be {must}, got {value!r}')
    return float(value)


def _check_budget_option(name: str, cfg: OptConfigType, budget: Optional[int], does: str,
                         key: str, default: float, valid, must: str) -> Optional[dict]:
    """``cfg`` of an option that acts on a fixed budget's iterates (one
    number, ``key``), with its default filled in, or ``None`` when off."""
    if cfg is None:
        return None
    if budget is None:
        raise ValueError(f'{name} {does}; set budget (e.g. budget=2) or {name}=None')
    unknown = sorted(set(cfg) - {key})
    if unknown:
        raise ValueError(f'{name} has unknown key(s) {unknown}; allowed keys: [{key!r}]')
    return {key: _checked_float(name, key, cfg.get(key, default), valid, must)}


def _check_fp_correction(cfg: OptConfigType, budget: Optional[int]) -> Optional[dict]:
    """``fp_correction`` with defaults filled in, or ``None`` when off."""
    return _check_budget_option('fp_correction', cfg, budget,
                                'supervises the iterates of a fixed budget', 'gamma', 0.8,
                                lambda gamma: 0 < gamma <= 1, 'in (0, 1]')


def _check_consistency(cfg: OptConfigType, budget: Optional[int]) -> Optional[dict]:
    """``consistency`` with defaults filled in, or ``None`` when off."""
    return _check_budget_option('consistency', cfg, budget,
                                'pulls the last iterate of a fixed budget onto the fixed point',
                                'weight', 1.0, lambda weight: weight > 0, 'a positive float')


def fp_correction_weights(gamma: float, num_states: int) -> List[float]:
    """Weights of the iterates ``h_1 .. h_K``: ``gamma^(K-k)``, normalised to
    sum to 1 (the total weight of the head's loss stays that of the stock
    head's)."""
    raw = [gamma**(num_states - k) for k in range(1, num_states + 1)]
    return [w / sum(raw) for w in raw]


def _check_jac_reg(jac_reg: OptConfigType) -> Optional[dict]:
    """``jac_reg`` with defaults filled in, or ``None`` when off."""
    if jac_reg is None:
        return None
    unknown = sorted(set(jac_reg) - set(JAC_REG_KEYS))
    if unknown:
        raise ValueError(
            f'jac_reg has unknown key(s) {unknown}; allowed keys: {list(JAC_REG_KEYS)}')
    cfg = dict(dict(weight=1.0, num_probes=1, freq=1.0, ramp_ratio=0.0, end_ratio=1.0), **jac_reg)
    probes = cfg['num_probes']
    if isinstance(probes, bool) or not isinstance(probes, int) or probes <= 0:
        raise ValueError(f'jac_reg.num_probes must be a positive int, got {probes!r}')
    for key, valid, must in (('weight', lambda v: v > 0, 'a positive float'),
                             ('freq', lambda v: 0 < v <= 1, 'in (0, 1]'),
                             ('ramp_ratio', lambda v: 0 <= v < 1, 'in [0, 1)'),
                             ('end_ratio', lambda v: 0 < v <= 1, 'in (0, 1]')):
        cfg[key] = _checked_float('jac_reg', key, cfg[key], valid, must)
    if cfg['ramp_ratio'] >= cfg['end_ratio']:
        raise ValueError(f"jac_reg.ramp_ratio ({cfg['ramp_ratio']!r}) must be below "
                         f"jac_reg.end_ratio ({cfg['end_ratio']!r})")
    return cfg


@MODELS.register_module()
class IFRRefiner(BaseModule):
    """Implicit feature refinement (paper Sec. 3.2, Fig. 2c).

    Maps a feature ``X`` to the equilibrium ``H* = F(H*; X)`` of one
    :class:`DoubleResidualBlock`, starting from ``H0 = 0``. ``mode`` selects
    the three rows of the paper's Table 6:

    * ``'deq'``: solve for ``H*`` with the DEQ op (``solver``), implicit
      gradients; memory independent of the iteration limit.
    * ``'unroll'``: ``num_steps`` weight-shared applications of the block with
      ordinary autograd ("implicit unrolling").
    * ``'explicit'``: ``num_steps`` weight-independent blocks.

    Every IFR head builds one of these per replaced tower, so the IFR logic
    lives here only. The solve's statistics are queued in
    :attr:`stats_buffer` for :class:`~mmifr.engine.hooks.IFRSolverStatsHook`;
    the refiner never needs to know the training iteration.

    Args:
        in_channels (int): channels of ``X``. When it differs from
            ``channels`` (e.g. SOLO's coordinate channels), a 1x1 conv + norm
            projects ``X`` first.
        channels (int): channels of ``H``. Default: 256.
        mode (str): ``'deq'``, ``'unroll'`` or ``'explicit'``.
        num_steps (int): applications (``'unroll'``) or blocks
            (``'explicit'``). Default: 4.
        block (dict): config of the block (``type`` defaults to
            ``'DoubleResidualBlock'``); ``channels`` is filled in.
        solver (dict): options of :class:`~mmifr.ops.DEQFixedPoint` for
            ``'deq'``. Default: :data:`DEFAULT_SOLVER` (Broyden, 15 forward /
            15 backward steps, tol 1e-3, history of 5 updates, chunks of 64).
            A dict without a ``solver`` key changes only the keys it gives
            (``dict(max_iter=30)``); one that names its solver is the whole
            solve (the op's defaults fill the rest).
        test_solver (dict, optional): options that replace ``solver``'s in
            eval mode, e.g. a looser tolerance for faster inference (a
            different ``solver`` there does not inherit ``solver``'s
            ``solver_kwargs``). The RoI
            mask heads set one by default (see ``default_test_solver`` of
            :class:`~mmifr.models.layers.IFRTowerMixin`).
        jac_reg (dict, optional): Jacobian regularisation (Bai et al. 2021)
            in training, ``dict(weight=w, num_probes=1)``: the loss gets
            ``w * ||df/dH||_F^2 / D`` at the refined ``H`` (a Hutchinson
            estimate, :func:`~mmifr.ops.jacobian_frobenius`; its gradient
            reaches the block's weights, not ``X``), so the block learns to
            contract and few-step solves come closer to ``H*``. The term is
            queued (:meth:`pop_aux_losses`) and added to the model's loss
            dict as ``loss_ifr_jac`` by
            :class:`~mmifr.engine.hooks.IFRAuxLossHook`. Its dose, as the
            DEQ papers give it: ``freq`` (default 1.0), the share of training
            forwards that compute it (a random draw per forward; the others
            add a zero, so the loss dict keeps its keys); ``ramp_ratio``
            (default 0), the fraction of training over which the weight
            rises linearly from 0; ``end_ratio`` (default 1), the fraction
            after which it is off. The last two read the training progress
            that the hook sets (:meth:`set_train_progress`); without it the
            full weight applies. ``None``: off.
        budget (int, optional): a fixed budget of ``K`` block evaluations
            from ``H0 = 0``, in training and at inference: no solver and no
            data-dependent stopping, so the graph is static (no host
            synchronisation; exportable), and what is trained is what runs.
            Training backpropagates through the ``K`` evaluations. 2 costs
            what the stock 4-conv tower costs (the RoI mask heads'
            ``BUDGET_IFR_CFG``, with ``fp_correction``); ``None`` (default)
            solves for the fixed point with ``solver`` (the paper's
            protocol). ``test_solver``, when given, still replaces the
            inference solve (e.g. the full solve of a budget-trained model).
        fp_correction (dict, optional): fixed-point correction (Bai et al.,
            DEQ-Flow, CVPR 2022) for a ``budget`` refiner: the head's loss is
            applied to every iterate ``h_k``, weighted ``gamma^(K-k)`` and
            normalised to sum to 1, so the early iterates learn to be good
            too and ``h_K`` stays close to ``F(h_K)``. ``dict(gamma=0.8)``.
            The refiner keeps the iterates of each training forward
            (:meth:`pop_states`); a head with
            :class:`~mmifr.models.roi_heads.IFRMaskLossMixin` turns them into
            losses. ``None``: off.
        consistency (dict, optional): for a ``budget`` refiner, pull the
            last iterate ``h_K`` onto the block's fixed point ``H*`` (as
            consistency-trained DEQs distil the solve into a few steps):
            ``H*`` is solved without a graph by ``solver``, started from
            ``h_K``, and the loss gets ``weight * ||h_K - H*||^2 / ||H*||^2``
            (the squared relative distance that the frontier reports),
            queued as ``loss_ifr_consistency`` like ``jac_reg``'s term. Its
            gradient reaches the block and, through ``h_K``, ``X``.
            ``dict(weight=1.0)``. ``None``: off.
        initializer (dict, optional): config of a learned initial guess of
            ``H*`` from ``X`` (e.g. ``dict(type='FixedPointInitializer')``,
            :class:`~mmifr.models.layers.FixedPointInitializer`), used by
            the ``'deq'`` solve instead of ``H0 = 0``; ``channels`` is filled
            in. In training it regresses the solve's ``H*`` (both detached),
            queued as ``loss_ifr_init`` like ``jac_reg``'s term. The unrolled
            warm-up keeps ``H0 = 0`` and the initializer regresses its output,
            so that its weights get a gradient at every iteration (DDP's
            default ``find_unused_parameters=False`` requires it).
            With a ``budget``, the ``K`` evaluations start from the guess
            and the task loss trains it with the model (as Skip-DEQ does);
            no ``loss_ifr_init`` then. ``None``: off.
        with_cp (bool): activation checkpointing (mmcv's ``with_cp``) of the
            unrolled block evaluations in training (``budget``, the unrolled
            warm-up, ``'unroll'`` and ``'explicit'``): each evaluation keeps
            only its input and is recomputed in backward, so training memory
            holds ``X`` and one ``(N, C, H, W)`` iterate per evaluation after
            the first (the zero start is a broadcast scalar) instead of five
            intermediates and an output per evaluation; a head with
            :class:`~mmifr.models.roi_heads.IFRMaskLossMixin` also recomputes
            the predictions of the earlier iterates (``fp_correction``). It
            trades one more forward of those parts for the memory: the budget
            recipe's mask-head training peak falls below the stock head's
            (docs/ifr_at_stock_cost.md). The implicit ``'deq'`` solve stores
            no evaluation and ignores it.
            Default: False.
        act_cfg (dict, optional): activation applied to the refined feature
            before the head reads it, as mmcv's ``ConvModule`` ends each conv
            of the stock tower with one (``dict(type='ReLU')``): the refiner
            then hands on a non-negative feature like the tower it replaces,
            where the block's GroupNorm alone gives a signed one. The solve,
            its statistics and a video warm start see ``H*`` itself; the
            fixed-point correction's iterates get the same activation. A
            ReLU did not help CondInst on the demo
            (docs/condinst_ifr_vs_stock.md). ``None`` (default): ``H*`` as it
            is (the paper's).
        norm_cfg (dict): norm of the input projection.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 in_channels: int = 256,
                 channels: int = 256,
                 mode: str = 'deq',
                 num_steps: int = 4,
                 block: ConfigType = dict(type='DoubleResidualBlock'),
                 solver: ConfigType = DEFAULT_SOLVER,
                 test_solver: OptConfigType = None,
                 jac_reg: OptConfigType = None,
                 budget: Optional[int] = None,
                 fp_correction: OptConfigType = None,
                 consistency: OptConfigType = None,
                 initializer: OptConfigType = None,
                 with_cp: bool = False,
                 act_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='GN', num_groups=4, requires_grad=True),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if mode not in MODES:
            raise ValueError(f'mode={mode!r} is not supported; allowed values: {list(MODES)}')
        for key, value in (('in_channels', in_channels), ('channels', channels),
                           ('num_steps', num_steps)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f'{key} must be a positive int, got {value!r}')
        self.in_channels = in_channels
        self.channels = channels
        self.mode = mode
        self.num_steps = num_steps
        self.inject = (
            ConvModule(in_channels, channels, 1, norm_cfg=norm_cfg, act_cfg=None)
            if in_channels != channels else None)
        block = dict(dict(type='DoubleResidualBlock'), **block, channels=channels)
        if mode == 'explicit':
            self.blocks = nn.ModuleList(MODELS.build(block) for _ in range(num_steps))
        else:
            self.block = MODELS.build(block)
        _check_solver_keys('solver', solver)
        # A solve that names its solver is complete; one that does not
        # changes keys of the default (a partial config or --cfg-options).
        base = {} if 'solver' in solver else copy.deepcopy(DEFAULT_SOLVER)
        self.deq = DEQFixedPoint(**{**base, **copy.deepcopy(dict(solver))})
        self.set_test_solver(test_solver)
        if budget is not None:
            if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
                raise ValueError(f'budget must be a positive int (block evaluations) or None, '
                                 f'got {budget!r}')
            if mode != 'deq':
                raise ValueError(f"budget sets how a 'deq' refiner runs; mode={mode!r} has its "
                                 'own num_steps')
        self.budget = budget
        if not isinstance(with_cp, bool):
            raise ValueError(f'with_cp must be True or False, got {with_cp!r}')
        self.with_cp = with_cp
        if act_cfg is not None and not isinstance(act_cfg, dict):
            raise ValueError(f"act_cfg must be an activation config (e.g. dict(type='ReLU')) "
                             f'or None, got {act_cfg!r}')
        self.act = build_activation_layer(dict(act_cfg)) if act_cfg is not None else None
        self.fp_correction = _check_fp_correction(fp_correction, budget)
        self.consistency = _check_consistency(consistency, budget)
        self._states: List[Tensor] = []
        self.jac_reg = _check_jac_reg(jac_reg)
        if self.jac_reg and mode == 'explicit':
            raise ValueError("jac_reg needs a fixed point (mode='deq' or 'unroll'); "
                             "mode='explicit' has none")
        if initializer is not None and mode != 'deq':
            raise ValueError(f"initializer starts the DEQ solve (mode='deq'); mode={mode!r} "
                             'starts from H0 = 0 by definition')
        self.initializer = (
            MODELS.build(dict(dict(type='FixedPointInitializer'), **initializer,
                              channels=channels)) if initializer is not None else None)
        self.unroll_warmup: Optional[int] = None
        # Lent by a video model while it runs a frame
        # (mmifr.models.vis.VideoWarmStartMixin); not part of the weights.
        self.warm_start: Optional[WarmStartMemory] = None
        self.train_progress: Optional[float] = None
        self.stats_buffer: Deque[DEQStats] = deque(maxlen=256)
        # Unweighted Jacobian estimates (jac_reg), logged as ifr/jac_frobenius;
        # kept as tensors so that training does not wait on the device.
        self.jac_buffer: Deque[Tensor] = deque(maxlen=256)
        # (loss name, scalar) pairs, summed per name by pop_aux_losses().
        self.aux_losses: List[Tuple[str, Tensor]] = []
        self.nonfinite_events = 0
        # Solves recorded on an accelerator, whose NaN/Inf count is read when
        # the statistics are popped (see _record).
        self._unchecked: Deque[DEQStats] = deque(maxlen=256)

    def set_train_progress(self, progress: Optional[float]) -> None:
        """Tell the refiner how far training is (``runner.iter /
        max_iters``, in [0, 1]), which schedules ``jac_reg``; ``None``: not
        known (the full weight applies)."""
        if progress is not None and not 0 <= progress <= 1:
            raise ValueError(f'training progress must be in [0, 1], got {progress!r}')
        self.train_progress = progress

    def jac_reg_weight(self) -> float:
        """``jac_reg``'s weight at the current training progress (0 when
        off or past ``end_ratio``)."""
        if not self.jac_reg:
            return 0.0
        cfg, progress = self.jac_reg, self.train_progress
        if progress is None:
            return cfg['weight']
        if progress >= cfg['end_ratio']:
            return 0.0
        if progress < cfg['ramp_ratio']:
            return cfg['weight'] * progress / cfg['ramp_ratio']
        return cfg['weight']

    def set_unroll_warmup(self, steps: Optional[int]) -> None:
        """Run ``'deq'`` as ``steps`` unrolled applications until called with
        ``None`` (the reference recipe's warm-up stage). A ``budget`` refiner
        has no solve to warm up and ignores it."""
        self.unroll_warmup = steps if self.budget is None else None

    def set_test_solver(self, test_solver: OptConfigType) -> None:
        """Set the inference solve (what ``test_solver`` configures): the
        public way for tools to evaluate a model with another solve.

        Args:
            test_solver (dict, optional): options that replace ``solver``'s
                in eval mode, validated here, e.g. ``dict(solver='unroll',
                max_iter=3)`` (3 evaluations) or ``dict(max_iter=40,
                tol=1e-4)`` (a tighter solve). ``None`` or ``dict()``: the
                refiner's own inference (its ``budget``, else ``solver``).
        """
        test_solver = dict(test_solver or {})
        _check_solver_keys('test_solver', test_solver)
        previous = getattr(self, '_test_solver', {})
        self._test_solver = test_solver
        try:
            DEQFixedPoint(**{**self.deq.options, **self._eval_overrides()})
        except ValueError as e:
            self._test_solver = previous
            raise ValueError(f'test_solver: {e}') from None

    @property
    def test_solver(self) -> dict:
        """The inference overrides set by ``test_solver`` / :meth:`set_test_solver`."""
        return dict(self._test_solver)

    @property
    def has_aux_losses(self) -> bool:
        """Whether training forwards queue losses (``jac_reg``, ``initializer``,
        ``consistency``)."""
        return bool(self.jac_reg) or self.initializer is not None or bool(self.consistency)

    @property
    def effective_mode(self) -> str:
        if self.mode == 'deq' and (self.unroll_warmup or self.budget):
            return 'unroll'
        return self.mode

    def solve_overrides(self) -> dict:
        """The options a ``'deq'`` refiner passes to its op in the current
        state (training or eval, warm-up, budget, ``test_solver``): what it
        runs, for tools that call the op themselves."""
        if self.unroll_warmup:
            # Validation during the warm-up runs unrolled, as training does.
            return dict(solver='unroll', max_iter=self.unroll_warmup)
        if not self.training and self._test_solver:
            return self._eval_overrides()
        if self.budget:
            return dict(solver='unroll', max_iter=self.budget)
        return {}

    def _params(self) -> List[Tensor]:
        return [p for p in self.block.parameters()]

    def forward(self, x: Tensor, h0: Optional[Tensor] = None) -> Tensor:
        """Refine ``x``.

        Args:
            x (Tensor): ``(N, in_channels, H, W)`` RoI features or a whole
                feature map; ``N`` may be 0.
            h0 (Tensor, optional): ``(N, channels, H, W)`` initial guess of
                the ``'deq'`` solve, e.g. the fixed point of the same object
                in the previous video frame (a warm start: fewer steps to the
                same ``H*``). It takes precedence over ``initializer``.
                Default: ``H0 = 0`` or the initializer's guess; in eval mode,
                while a video model lends the refiner a
                :class:`~mmifr.models.layers.WarmStartMemory`
                (:attr:`warm_start`), the previous frame's equilibria it
                matches (the others from the default). In training a lent
                memory is used only if it has a ``budget``: its evaluations
                from the matched equilibria are unrolled, in the graph.

        Returns:
            Tensor: ``(N, channels, H, W)`` the refined feature ``H*``
            (through ``act_cfg``'s activation, if set).
        """
        if self.inject is not None:
            x = self.inject(x)
        mode = self.effective_mode
        memory = self.warm_start
        # In training only a budget's evaluations from a warm start have
        # anything to learn (a video model's warm-start loss); a solve to the
        # tolerance ends at the same H* from any start.
        if (h0 is None and memory is not None and mode == 'deq'
                and (not self.training or memory.budget is not None)):
            h = self._refine_warm(x)
        else:
            h = self._refine(x, h0)
        return self.act(h) if self.act is not None else h

    def _refine(self, x: Tensor, h0: Optional[Tensor]) -> Tensor:
        """:meth:`forward` after the input projection."""
        mode = self.effective_mode
        if h0 is not None and mode != 'deq':
            raise ValueError(f'h0 (a warm start) needs the DEQ solve; this refiner runs '
                             f'{mode!r} (mode={self.mode!r}, unroll warm-up '
                             f'{self.unroll_warmup})')
        if h0 is not None and h0.shape != x.shape:
            raise ValueError(f'h0 has shape {tuple(h0.shape)}; the refined feature has '
                             f'{tuple(x.shape)}')
        training = self.training and torch.is_grad_enabled()
        checkpointed = self.with_cp and training
        if mode == 'explicit':
            h = zero_start(x)
            for block in self.blocks:
                h = (self._checkpointed(block) if checkpointed else block)(h, x)
            return h
        guess = None
        if self.mode == 'unroll':
            overrides = dict(solver='unroll', max_iter=self.num_steps)
        else:
            overrides = self.solve_overrides()
        if self.initializer is not None and (h0 is None or training):
            # X detached: the guess must not shape the features it reads.
            guess = self.initializer(x.detach())
            if h0 is None and not self.unroll_warmup:
                # A budget's evaluations start from the guess and train it
                # through the task loss; a solve's fixed point does not
                # depend on its start, so the guess is regressed instead.
                h0 = guess if self.budget else guess.detach()
        states = [] if training and self.fp_correction else None
        # The implicit solve stores no evaluation: only unrolled ones are checkpointed.
        unrolled = overrides.get('solver') == 'unroll'
        func = self._checkpointed(self.block) if checkpointed and unrolled else self.block
        h = self.deq(func, x, params=self._params(), h0=h0, states=states, **overrides)
        self._record(self.deq.last_stats)
        if states is not None:
            self._states = states
        if training:
            if self.jac_reg:
                self._queue_jacobian_loss(h, x)
            if self.consistency:
                self._queue_consistency_loss(h, x)
            if guess is not None and not self.budget:
                # During the unrolled warm-up the guess regresses the unrolled
                # output, which keeps the initializer in every backward.
                self._queue_loss('loss_ifr_init', self.initializer.loss(guess, h))
        return h

    def _refine_warm(self, x: Tensor) -> Tensor:
        """:meth:`_refine` of a video frame, from the previous frame's
        equilibria that :attr:`warm_start` matches (the others cold)."""
        memory = self.warm_start
        h0, matched = memory.initial_guess(self, x)
        if not matched.any():
            h = self._refine(x, None)
        elif memory.budget is None:
            if self.initializer is not None and not matched.all():
                h0 = torch.where(matched[:, None, None, None], h0, self.initializer(x))
            h = self._refine(x, h0)
        else:
            # A fixed budget suits a start near H* only: the cold samples
            # get the refiner's own inference.
            h = torch.empty_like(h0)
            h[matched] = self._unroll_from(x[matched], h0[matched], memory.budget)
            if not matched.all():
                h[~matched] = self._refine(x[~matched], None)
        memory.remember(x, h)
        return h

    def _unroll_from(self, x: Tensor, h0: Tensor, budget: int) -> Tensor:
        h = self.deq(self.block, x, h0=h0, solver='unroll', max_iter=budget)
        self._record(self.deq.last_stats)
        return h

    @staticmethod
    def _checkpointed(block: nn.Module):
        # Non-reentrant: the block's parameters get their gradients although
        # the inputs (the zero H0) may not require any.
        return lambda h, x: cp.checkpoint(block, h, x, use_reentrant=False)

    def pop_states(self) -> List[Tensor]:
        """Return and clear the iterates ``[h_1, ..., h_K]`` of the latest
        training forward (``(N, C, H, W)`` each, in the graph, through
        ``act_cfg``'s activation as the output is; ``h_K`` is the output),
        kept when ``fp_correction`` is set; ``[]`` otherwise."""
        states, self._states = self._states, []
        if self.act is not None:
            states = [self.act(h) for h in states]
        return states

    def _queue_loss(self, name: str, loss: Tensor) -> None:
        if len(self.aux_losses) >= MAX_QUEUED_AUX_LOSSES:
            raise RuntimeError(
                f'IFRRefiner: {name} is queued but the refiner\'s losses are never added to '
                "the model loss: add dict(type='IFRAuxLossHook') to custom_hooks (configs/ifr/"
                '_base_/ifr_runtime.py has it), or call pop_aux_losses() after each forward')
        self.aux_losses.append((name, loss))

    def _queue_jacobian_loss(self, h: Tensor, x: Tensor) -> None:
        # At the detached H, with X detached too: the penalty shapes the block
        # only. Through X it would also reshape the backbone and FPN features
        # that the box head shares.
        weight, freq = self.jac_reg_weight(), self.jac_reg['freq']
        # No draw at freq 1: the random stream stays that of a run without it.
        if weight == 0 or (freq < 1 and random.random() >= freq):
            self._queue_loss('loss_ifr_jac', h.new_zeros(()))
            return
        z = h.detach().requires_grad_()
        frob = jacobian_frobenius(self.block(z, x.detach()), z, self.jac_reg['num_probes'])
        self._queue_loss('loss_ifr_jac', frob * weight)
        self.jac_buffer.append(frob.detach())

    def _queue_consistency_loss(self, h: Tensor, x: Tensor) -> None:
        if h.numel() == 0:
            self._queue_loss('loss_ifr_consistency', h.sum())
            return
        with torch.no_grad():
            # Started from h_K: the solve only has the remaining distance to go.
            h_star = self.deq(self.block, x, h0=h.detach())
            scale = h_star.pow(2).mean().clamp_min(torch.finfo(h.dtype).tiny)
        loss = (h - h_star).pow(2).mean() / scale
        self._queue_loss('loss_ifr_consistency', loss * self.consistency['weight'])

    def pop_aux_losses(self) -> dict:
        """Return and clear the queued training losses.

        Returns:
            dict: ``{'loss_ifr_jac': Tensor, 'loss_ifr_init': Tensor,
            'loss_ifr_consistency': Tensor}``
            (scalars, each summed over the forwards since the last call; only
            the queued ones), or ``{}`` if none is queued.
        """
        losses: dict = {}
        for name, loss in self.aux_losses:
            losses[name] = losses[name] + loss if name in losses else loss
        self.aux_losses = []
        return losses

    def _eval_overrides(self) -> dict:
        """:attr:`test_solver` merged onto the training solve (see
        :func:`merge_solve`)."""
        return merge_solve(self.deq.options, self._test_solver)

    def _record(self, stats: DEQStats) -> None:
        self.stats_buffer.append(stats)
        if stats.forward.nonfinite.device.type == 'cpu':
            self._check_nonfinite(stats)
        else:
            # Reading the count on an accelerator would make the host wait
            # for the device at every forward: it is read in pop_stats(),
            # which the stats hook calls once per iteration.
            self._unchecked.append(stats)

    def _check_nonfinite(self, stats: DEQStats) -> None:
        bad = int(stats.forward.nonfinite.sum())
        if not bad:
            return
        self.nonfinite_events += 1
        # Rate-limited: the first few events, then every 100th.
        if self.nonfinite_events <= 3 or self.nonfinite_events % 100 == 0:
            print_log(
                f'IFRRefiner: NaN/Inf inside the fixed-point solve for {bad} of '
                f'{stats.forward.batch_size} samples (event {self.nonfinite_events}); '
                f'their best finite iterate is used. Solver stats: {stats.summary()}',
                logger='current',
                level=30)

    def pop_stats(self) -> List[DEQStats]:
        """Return and clear the queued statistics (and count the NaN/Inf
        events of solves recorded on an accelerator)."""
        while self._unchecked:
            self._check_nonfinite(self._unchecked.popleft())
        stats = list(self.stats_buffer)
        self.stats_buffer.clear()
        return stats

    def pop_jacobian_estimates(self) -> List[float]:
        """Return and clear the queued ``jac_reg`` estimates (unweighted)."""
        values = [float(v) for v in self.jac_buffer]
        self.jac_buffer.clear()
        return values

    def extra_repr(self) -> str:
        return (f'mode={self.mode!r}, num_steps={self.num_steps}, budget={self.budget}, '
                f'with_cp={self.with_cp}')
