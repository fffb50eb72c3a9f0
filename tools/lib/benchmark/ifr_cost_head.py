"""The ``head`` section of the IFR cost benchmark: the mask head alone.

mmdet's ``FCNMaskHead`` against ``IFRConvFCMaskHead`` under the solver
settings of each row of :data:`HEAD_ROWS`, on the same RoI features
``(N, C, S, S)``: inference latency, training-step time, solver steps and,
each row in a fresh process (:func:`head_memory_worker`), the training
step's peak memory.

The functions take the ``argparse`` namespace of
``tools/analysis_tools/benchmark_ifr_cost.py``, whose flags name their sizes.
"""
import copy
import json
import os
import statistics
import subprocess
from argparse import Namespace
from typing import Dict, List, Sequence, Tuple

import torch
from torch import Tensor, nn

from mmdet.registry import MODELS
from ..memory import MIB, current_rss, peak_rss, reset_peak_rss
from ..models import build_detector, build_loader
from ..progress import log, quiet_mmengine
from ..roi_features import gt_roi_features
from .released_solver import register_v0
from mmifr.models.roi_heads.mask_heads.ifr_conv_fc_mask_head import BUDGET_IFR_CFG
from .solves import PAPER_SOLVER, refiner_defaults, solver_steps
from .timing import add_ratios, median_time

#: Marks the line of a memory worker's stdout that carries its result (JSON);
#: anything else the worker prints is ignored.
RESULT_PREFIX = 'IFR_COST_RESULT '

#: ``key: (label, settings)``; settings: ``stock`` or the IFR ``solver`` (training
#: and, unless ``test_solver`` is given, inference) and ``test_solver``; the row
#: ``released`` runs the solver code as released (``broyden_v0``). ``lever`` says
#: what the row changes.
HEAD_ROWS = {
    'stock': dict(label='stock FCNMaskHead (4 convs)', stock=True),
    'released': dict(
        label='IFR as released (Broyden 15/15, tol 1e-3)',
        solver=dict(PAPER_SOLVER, solver='broyden_v0', backward_solver='broyden_v0'),
        lever='-'),
    'paper': dict(
        label='IFR, same solve, current solver code',
        solver=PAPER_SOLVER,
        lever='4 history passes/step instead of 6, no zero-fill, in-place compaction'),
    'chunk64': dict(
        label='+ chunks of 64 RoIs (fwd & bwd)',
        solver=dict(PAPER_SOLVER, chunk_size=64),
        lever='solve 64 RoIs at a time: same result, solver state/graph per chunk'),
    'chunk32': dict(
        label='+ chunks of 32 RoIs (fwd & bwd)',
        solver=dict(PAPER_SOLVER, chunk_size=32),
        lever='solve 32 RoIs at a time'),
    'mem5': dict(
        label='+ history memory 5 (fwd & bwd)',
        solver=dict(PAPER_SOLVER, solver_kwargs=dict(memory=5),
                    backward_solver_kwargs=dict(memory=5)),
        lever='Broyden keeps the last 5 updates instead of 14'),
    'mem8': dict(
        label='+ history memory 8 (fwd & bwd)',
        solver=dict(PAPER_SOLVER, solver_kwargs=dict(memory=8),
                    backward_solver_kwargs=dict(memory=8)),
        lever='Broyden keeps the last 8 updates'),
    'chunk64_mem5': dict(
        label='+ chunks of 64 + memory 5',
        solver=dict(PAPER_SOLVER, chunk_size=64, solver_kwargs=dict(memory=5),
                    backward_solver_kwargs=dict(memory=5)),
        lever='chunks and a shorter history'),
    'chunk64_bf16': dict(
        label='+ chunks of 64 + bf16 history',
        solver=dict(PAPER_SOLVER, chunk_size=64, solver_kwargs=dict(history_dtype='bfloat16'),
                    backward_solver_kwargs=dict(history_dtype='bfloat16')),
        lever='chunks and bf16 history'),
    'bf16': dict(
        label='+ bf16 history',
        solver=dict(PAPER_SOLVER, solver_kwargs=dict(history_dtype='bfloat16'),
                    backward_solver_kwargs=dict(history_dtype='bfloat16')),
        lever='history stored in bfloat16'),
    'mem5_bf16': dict(
        label='+ memory 5 + bf16 history',
        solver=dict(PAPER_SOLVER, solver_kwargs=dict(memory=5, history_dtype='bfloat16'),
                    backward_solver_kwargs=dict(memory=5, history_dtype='bfloat16')),
        lever='both'),
    'chunk32_bf16': dict(
        label='+ chunks of 32 + bf16 history',
        solver=dict(PAPER_SOLVER, chunk_size=32, solver_kwargs=dict(history_dtype='bfloat16'),
                    backward_solver_kwargs=dict(history_dtype='bfloat16')),
        lever='chunks and bf16 history'),
    'jfb': dict(
        label='IFR, Jacobian-free backward (grad=phantom, 1 step)',
        solver=dict(PAPER_SOLVER, grad='phantom', phantom_steps=1),
        lever='inexact gradient: one differentiable F step at H* instead of the adjoint solve'),
    'phantom5': dict(
        label='IFR, phantom gradient (5 steps, damping 0.5)',
        solver=dict(PAPER_SOLVER, grad='phantom', phantom_steps=5, phantom_damping=0.5),
        lever='inexact gradient (Geng et al. 2021)'),
    'default': dict(
        label='IFR, project defaults (training solve + mask-head test_solver)',
        solver='default',
        test_solver='default',
        lever='memory 5 + chunks of 64 (training); tol 1e-2 + output fz (inference)'),
    'budget2': dict(
        label='IFR, budget=2 + fixed-point correction, no checkpointing',
        ifr_cfg=dict(BUDGET_IFR_CFG, with_cp=False),
        lever='2 block evaluations in training and inference; the mask loss on both iterates'),
    'budget2_cp': dict(
        label='IFR at the stock cost (BUDGET_IFR_CFG: budget=2 + fpc, with_cp=True)',
        ifr_cfg=BUDGET_IFR_CFG,
        lever='as budget2; each evaluation and the earlier iterate\'s prediction recomputed '
        'in backward'),
    'budget2_only': dict(
        label='IFR, budget=2 alone (no fixed-point correction)',
        ifr_cfg=dict(budget=2),
        lever='2 block evaluations in training and inference'),
    'budget2_only_cp': dict(
        label='IFR, budget=2 alone, activation checkpointing (with_cp=True)',
        ifr_cfg=dict(budget=2, with_cp=True),
        lever='as budget2_only; each evaluation recomputed in backward'),
    'budget2_init': dict(
        label='IFR, budget=2 from a jointly trained initial guess',
        ifr_cfg=dict(budget=2, initializer=dict()),
        lever='2 block evaluations from FixedPointInitializer(X) instead of H0 = 0'),
    'budget2_init_cp': dict(
        label='IFR, budget=2 from a jointly trained initial guess, with_cp=True',
        ifr_cfg=dict(budget=2, initializer=dict(), with_cp=True),
        lever='as budget2_init; each evaluation recomputed in backward'),
}
#: Inference-only rows: the paper's training solve, a cheaper test-time solve.
INFER_ROWS = {
    'it3_fz': dict(max_iter=3, output='fz'),
    'it4_fz': dict(max_iter=4, output='fz'),
    'it5': dict(max_iter=5),
    'tol1e-2': dict(tol=1e-2),
    'tol3e-2': dict(tol=3e-2),
    'tol3e-2_fz': dict(tol=3e-2, output='fz'),
    'tol5e-2_fz': dict(tol=5e-2, output='fz'),
    'tol1e-1_fz': dict(tol=1e-1, output='fz'),
}
for _key, _ts in INFER_ROWS.items():
    HEAD_ROWS[_key] = dict(
        label='IFR, test_solver ' + ', '.join(f'{k}={v}' for k, v in _ts.items()),
        solver=PAPER_SOLVER,
        test_solver=_ts,
        infer_only=True,
        lever='inference solve only')
#: Inference-only rows of the budget model at other budgets.
for _k in (1, 3, 4):
    HEAD_ROWS[f'budget2_infer{_k}'] = dict(
        label=f'IFR budget=2, inference at K={_k} evaluations',
        ifr_cfg=dict(BUDGET_IFR_CFG, test_solver=dict(solver='unroll', max_iter=_k)),
        infer_only=True,
        lever='inference budget only')


def row_refiner_cfg(row: dict) -> dict:
    """The ``ifr_cfg`` (an ``IFRRefiner`` config) of an IFR row of :data:`HEAD_ROWS`.

    A row with ``ifr_cfg`` gives it whole; the others are DEQ solves, where
    ``'default'`` stands for the project's default solve (see
    :func:`~tools.lib.benchmark.solves.refiner_defaults`) and a row without
    ``test_solver`` keeps the training solve at inference.
    """
    if 'ifr_cfg' in row:
        return copy.deepcopy(row['ifr_cfg'])
    solver_default, test_default = refiner_defaults()
    solver = solver_default if row.get('solver') == 'default' else row['solver']
    test_solver = row.get('test_solver')
    if test_solver == 'default':
        test_solver = test_default
    return dict(type='IFRRefiner', solver=solver, test_solver=test_solver or {})


def build_head(row: dict, args: Namespace) -> nn.Module:
    """A freshly initialised mask head of ``row``, seeded with ``args.seed``.

    Both kinds have 4 convs of ``args.channels`` on RoIs of
    ``args.roi_size``, so that only the refinement differs.
    """
    cfg = dict(
        num_convs=4,
        in_channels=args.channels,
        conv_out_channels=args.channels,
        num_classes=args.num_classes,
        roi_feat_size=args.roi_size)
    if row.get('stock'):
        cfg['type'] = 'FCNMaskHead'
    else:
        cfg.update(type='IFRConvFCMaskHead', ifr_cfg=row_refiner_cfg(row))
    torch.manual_seed(args.seed)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def real_roi_features(args: Namespace, n: int) -> Tuple[Tensor, dict, int]:
    """RoI features of real objects through the trained ``args.head_checkpoint``.

    Ground-truth boxes of the first ``args.head_images`` test images; where
    they hold fewer than ``n`` objects, jittered copies (a real feature plus
    a little noise) make up the rest.

    Returns:
        tuple: The features ``(n, C, S, S)`` (``C``, ``S``: the model's mask
        RoI extractor's), the state dict of the model's mask head and its
        number of classes.
    """
    model, cfg = build_detector(args.head_config, {}, args.head_checkpoint)
    base, _ = gt_roi_features(model, build_loader(cfg, args.head_images), max_rois=n)
    gen = torch.Generator().manual_seed(args.seed + 3)
    with torch.no_grad():
        if base.shape[0] < n:
            idx = torch.randint(0, base.shape[0], (n - base.shape[0], ), generator=gen)
            extra = base[idx] + 0.05 * base.std() * torch.randn(
                base[idx].shape, generator=gen)
            base = torch.cat([base, extra])
    head = model.roi_head.mask_head
    return base[:n].contiguous(), head.state_dict(), head.num_classes


class HeadProblem:
    """RoI features, mask targets and labels for the head rows.

    Features are ``N(0, 1)`` noise, or with ``args.head_checkpoint`` real
    RoIs (:func:`real_roi_features`) whose trained mask head weights every
    IFR row then loads. All tensors are drawn from ``args.seed``, so a
    memory worker in another process rebuilds the same problem.

    Args:
        args: The tool's arguments (sizes, seed, ``head_*``).

    Attributes:
        feats (Tensor): ``(max(num_rois, train_rois), C, S, S)``, ``C =
            args.channels`` and ``S = args.roi_size`` for random features.
        targets (Tensor): Binary mask targets ``(train_rois, 2S, 2S)``.
        labels (Tensor): Class labels ``(train_rois, )``.
        num_classes (int): ``args.num_classes``, or the trained head's.
    """

    def __init__(self, args: Namespace) -> None:
        self.args = args
        shape = (args.channels, args.roi_size, args.roi_size)
        gen = torch.Generator().manual_seed(args.seed + 1)
        self.trained_state = None
        if args.head_checkpoint:
            feats, self.trained_state, self.num_classes = real_roi_features(
                args, max(args.num_rois, args.train_rois))
        else:
            feats = torch.randn(max(args.num_rois, args.train_rois), *shape, generator=gen)
            self.num_classes = args.num_classes
        self.feats = feats
        side = 2 * args.roi_size
        n = args.train_rois
        self.targets = (torch.rand(n, side, side, generator=gen) > 0.5).float()
        self.labels = torch.randint(0, self.num_classes, (n, ), generator=gen)

    def infer_x(self) -> Tensor:
        """The inference input, ``(num_rois, C, S, S)``."""
        return self.feats[:self.args.num_rois].contiguous()

    def train_x(self) -> Tensor:
        """The training input, ``(train_rois, C, S, S)``."""
        return self.feats[:self.args.train_rois].contiguous()

    def head(self, row: dict) -> nn.Module:
        """The mask head of ``row`` (:func:`build_head`), trained weights loaded."""
        args = copy.copy(self.args)
        args.num_classes = self.num_classes
        head = build_head(row, args)
        if self.trained_state is not None and not row.get('stock'):
            head.load_state_dict(self.trained_state)
        return head


def head_train_step(head: nn.Module, x: Tensor, targets: Tensor, labels: Tensor) -> None:
    """Forward, mmdet's mask loss and backward, from cleared gradients.

    Args:
        head: A mask head in training mode.
        x: RoI features ``(N, C, S, S)``.
        targets: Binary mask targets ``(N, 2S, 2S)``.
        labels: Class of each RoI ``(N, )``.
    """
    head.zero_grad(set_to_none=True)
    preds = head(x)
    loss = head.loss_mask(preds, targets, labels)
    # Fixed-point correction: the weighted loss of each earlier iterate.
    weights, iterates = head.pop_iterate_preds() if hasattr(head, 'pop_iterate_preds') else ([], [])
    loss = sum((weight * head.loss_mask(it['mask_preds'], targets, labels)
                for weight, it in zip(weights, iterates)), loss * (weights[-1] if weights else 1))
    # mmdet's RoI heads return only the losses: no prediction outlives the
    # forward into backward, for the stock head or an IFR one.
    del preds, iterates
    loss.backward()


def head_memory_worker(args: Namespace) -> None:
    """Measure one row's training peak memory in this (fresh) process.

    The row is ``args.memory_worker``. One warm-up step, then the peak RSS
    is reset and one more step taken; prints the increase of the peak over
    the RSS before that step, in bytes, on a line starting with
    :data:`RESULT_PREFIX`: ``{"peak_rss_increase": ...}``.
    """
    quiet_mmengine()
    torch.set_num_threads(args.threads)
    register_v0()
    row = HEAD_ROWS[args.memory_worker]
    problem = HeadProblem(args)
    head = problem.head(row).train()
    x = problem.train_x()
    head_train_step(head, x, problem.targets, problem.labels)  # warm-up
    head.zero_grad(set_to_none=True)
    try:
        reset_peak_rss()
    except OSError:
        # No clear_refs: the process peak then includes the warm-up step,
        # which allocates the same (plus one-off caches).
        pass
    before = current_rss()
    head_train_step(head, x, problem.targets, problem.labels)
    peak = peak_rss()
    print(RESULT_PREFIX + json.dumps(dict(peak_rss_increase=peak - before)), flush=True)


def forward_args(args: Namespace, extra: Dict[str, str]) -> List[str]:
    """The command-line flags that rebuild ``args``' head problem elsewhere.

    Args:
        args: The tool's arguments; those the problem depends on are
            forwarded (``None`` ones left out, so they keep their default).
        extra: Further ``{flag: value}`` pairs, appended.

    Returns:
        list: Flags and values, e.g. ``['--threads', '1', ..., '--memory-worker', 'paper']``.
    """
    cmd = []
    for key in ('threads', 'seed', 'num_rois', 'train_rois', 'channels', 'roi_size',
                'num_classes', 'head_config', 'head_checkpoint', 'head_images'):
        value = getattr(args, key)
        if value is not None:
            cmd += [f"--{key.replace('_', '-')}", str(value)]
    for key, value in extra.items():
        cmd += [key, value]
    return cmd


def measure_head_memory(args: Namespace, key: str, worker: Sequence[str]) -> int:
    """The training peak memory of row ``key``, measured in a fresh process.

    A fresh process has no allocator caches or freed-but-kept pages of the
    other rows. Large tensors are ``mmap``-ed (``MALLOC_MMAP_THRESHOLD_``)
    so that freed memory leaves the RSS at once.

    Args:
        args: The tool's arguments.
        key: A key of :data:`HEAD_ROWS`.
        worker: The command that runs the benchmark tool, e.g.
            ``[sys.executable, 'tools/analysis_tools/benchmark_ifr_cost.py']``:
            :func:`forward_args` with ``--memory-worker key`` are appended,
            and the tool must hand those arguments to
            :func:`head_memory_worker`.

    Returns:
        int: Peak RSS increase of one training step, in bytes.
    """
    cmd = list(worker) + forward_args(args, {'--memory-worker': key})
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='131072', OMP_NUM_THREADS=str(args.threads))
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True, env=env)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX))
    return json.loads(line[len(RESULT_PREFIX):])['peak_rss_increase']


def run_head(args: Namespace, worker: Sequence[str]) -> Dict:
    """Measure the rows ``args.head_rows`` (all by default; ``stock`` always).

    Every row gets a warm-up run (which also gives its solver steps), then
    the rows are timed in turn, ``args.repeats`` times, so that a change of
    machine load hits every row alike.

    Args:
        args: The tool's arguments.
        worker: The command of the memory workers, see
            :func:`measure_head_memory` (unused with ``args.no_memory``).

    Returns:
        dict: The report's ``head`` section: sizes, ``inputs`` and per-row
        results under ``rows`` (``infer_s``, ``train_s``, ``train_peak_mib``,
        their ratios to ``stock``, solver steps, the refiner config).

    Raises:
        ValueError: On an unknown row key.
    """
    register_v0()
    keys = args.head_rows or list(HEAD_ROWS)
    unknown = set(keys) - set(HEAD_ROWS)
    if unknown:
        raise ValueError(f'--head-rows: unknown {sorted(unknown)}; known: {list(HEAD_ROWS)}')
    if 'stock' not in keys:
        keys = ['stock'] + keys
    problem = HeadProblem(args)
    x_inf, x_tr = problem.infer_x(), problem.train_x()
    heads = {k: problem.head(HEAD_ROWS[k]) for k in keys}
    results = {
        k: dict(label=HEAD_ROWS[k]['label'], lever=HEAD_ROWS[k].get('lever', ''))
        for k in keys
    }
    for key in keys:
        row = HEAD_ROWS[key]
        if not row.get('stock'):
            results[key]['refiner'] = {
                k: v for k, v in row_refiner_cfg(row).items() if k != 'type'}

    def infer(key):
        head = heads[key].eval()
        with torch.no_grad():
            head(x_inf)

    def train(key):
        head = heads[key].train()
        head_train_step(head, x_tr, problem.targets, problem.labels)

    log(f'[head] {len(keys)} rows; inference on {args.num_rois} RoIs, training on '
        f'{args.train_rois} RoIs '
        f'({"trained weights, real RoIs" if args.head_checkpoint else "random"})')
    for key in keys:
        infer(key)
        results[key]['infer_steps'] = solver_steps(heads[key])
        if not HEAD_ROWS[key].get('infer_only'):
            train(key)
            results[key]['train_steps'] = solver_steps(heads[key])
        log(f'[head] warm-up {key}: {results[key].get("infer_steps")} '
            f'{results[key].get("train_steps")}')
    runs = {k: dict(infer=[], train=[]) for k in keys}
    for rep in range(args.repeats):
        for key in keys:
            runs[key]['infer'].append(median_time(lambda: infer(key), 1)[0])
            if not HEAD_ROWS[key].get('infer_only'):
                runs[key]['train'].append(median_time(lambda: train(key), 1)[0])
            # The timed runs' records would otherwise pile up until the end.
            solver_steps(heads[key])
            log(f'[head] repeat {rep + 1}/{args.repeats} {key}: infer '
                f'{runs[key]["infer"][-1]:.3f}s' + (f', train {runs[key]["train"][-1]:.3f}s'
                                                    if runs[key]['train'] else ''))
    for key in keys:
        for phase in ('infer', 'train'):
            if runs[key][phase]:
                results[key][f'{phase}_s'] = statistics.median(runs[key][phase])
                results[key][f'{phase}_runs'] = runs[key][phase]
    if not args.no_memory:
        for key in keys:
            if HEAD_ROWS[key].get('infer_only'):
                continue
            log(f'[head] memory {key}: fresh process')
            results[key]['train_peak_mib'] = measure_head_memory(args, key, worker) / MIB
    for key in keys:
        add_ratios(results[key], results['stock'],
                   dict(infer_s='infer', train_s='train', train_peak_mib='train_peak'))
    return dict(
        num_rois=args.num_rois,
        train_rois=args.train_rois,
        roi_shape=[args.channels, args.roi_size, args.roi_size],
        num_classes=problem.num_classes,
        inputs='real RoIs of ' + args.head_checkpoint if args.head_checkpoint else 'random',
        rows=results)
