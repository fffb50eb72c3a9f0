"""What IFR costs against mmdet's stock 4-conv mask head, and what each lever buys.

One run measures every side on the same machine, interleaved, and writes the
ratios IFR / stock (JSON + markdown, ``work_dirs/benchmarks/ifr_cost.*`` by
default). Three sections (``--sections``):

``head``
    The mask head alone (RoI features ``N x 256 x 14 x 14`` in, mask logits
    out): mmdet's ``FCNMaskHead`` against ``IFRConvFCMaskHead`` with the
    solver settings of each *lever* row. Measured per row:

    * inference latency (eval mode, ``torch.no_grad``) on ``--num-rois`` RoIs;
    * training step (forward + mmdet's mask loss + backward) on
      ``--train-rois`` RoIs;
    * training peak memory: each row runs in a fresh subprocess one warm-up
      step, then the kernel's peak-RSS counter (``VmHWM``) is reset and one
      more step is run; reported is that step's peak RSS minus the RSS
      before it (inputs and weights excluded, parameter gradients, autograd
      graph, solver state, temporaries and allocator slack included). Large
      tensors are ``mmap``-ed (``MALLOC_MMAP_THRESHOLD_``) so freed memory
      leaves the RSS at once;
    * solver steps actually taken (forward and adjoint, mean per RoI).

    RoI features are random (``N(0, 1)``) and weights freshly initialised,
    unless ``--head-checkpoint`` names a trained IFR model: its mask head
    weights are used and its RoI features are extracted from real images
    (``--head-images``, ground-truth boxes, jittered to reach ``N`` RoIs).
    The row ``IFR (as released)`` runs the solver code this project started
    from (kept below as ``broyden_v0``: six passes over the history per step,
    zero-filled history, state copied on compaction).

``e2e``
    Whole Mask R-CNNs (``--e2e-models``): ``r50`` is mmdet's
    ``mask-rcnn_r50_fpn_1x_coco.py`` (``backbone.init_cfg=None``) against
    ``configs/ifr/mask_rcnn_r50_ifr_1x.py`` on the fruits & nuts photos;
    ``mbv2`` is the CPU demo's pair of configs on ``data/shapes``. Both sides
    share every weight outside the mask head (copied), hence the same
    proposals and detections. Inference is forced to a realistic number of
    detections (``score_thr=0``, ``max_per_img=--e2e-dets``): a randomly
    initialised detector otherwise keeps almost none and the mask head would
    cost nothing. Measured: latency per image (whole ``predict``, and the part
    spent in the mask head), training-step time (forward + losses + backward,
    batch of ``--e2e-train-batch`` images), positive RoIs per step (what the
    mask head trains on), solver steps.

``accuracy``
    Paper Table 7 redone on a trained IFR model (``--config/--checkpoint``):
    mask AP on its test set for each inference solver setting
    (``--max-iters`` at tol ``1e-3``, ``--tols`` at ``max_iter=15``, both
    ``output`` modes, and the project's default ``test_solver``; each
    setting overrides the training solve), with the
    measured time per image. The backbone, RPN and box head run once per image
    (the mask branch does not change them); the mask branch then runs once per
    setting through the refiner's ``test_overrides``, each into its own
    ``CocoMetric``. ``--baseline-config/--baseline-checkpoint`` add the stock
    model's row.

Every timing is the median of ``--repeats`` runs after a warm-up run, with
``--threads`` intra-op threads (1 by default: steadier on a shared CPU).

Examples::

    # head rows + both whole models, random weights
    python tools/analysis_tools/benchmark_ifr_cost.py --sections head e2e
    # accuracy against cost on the demo's trained IFR model
    python tools/analysis_tools/benchmark_ifr_cost.py --sections accuracy \\
        --config configs/ifr/demo/mask-rcnn_mbv2_fpn_shapes_ifr.py \\
        --checkpoint work_dirs/demo/mask_rcnn_mbv2_shapes/ifr/iter_450.pth
"""
import argparse
import copy
import json
import os
import os.path as osp
import platform
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RESULT_PREFIX = 'IFR_COST_RESULT '
SECTIONS = ('head', 'e2e', 'accuracy')
MIB = 1 << 20

#: The paper's solve (and the released code's): Broyden, 15 forward / 15
#: backward steps, relative tolerance 1e-3, full history.
PAPER_SOLVER = dict(solver='broyden', max_iter=15, tol=1e-3, backward_max_iter=15)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('--sections', nargs='+', choices=SECTIONS, default=['head', 'e2e'])
    parser.add_argument('--out-dir', default='work_dirs/benchmarks')
    parser.add_argument('--name', default='ifr_cost', help='output file stem')
    parser.add_argument('--threads', type=int, default=1, help='intra-op threads')
    parser.add_argument('--repeats', type=int, default=3, help='timed runs after a warm-up')
    parser.add_argument('--seed', type=int, default=0)
    # head
    parser.add_argument('--num-rois', type=int, default=100, help='RoIs, head inference')
    parser.add_argument('--train-rois', type=int, default=128, help='RoIs, head training')
    parser.add_argument('--channels', type=int, default=256)
    parser.add_argument('--roi-size', type=int, default=14)
    parser.add_argument('--num-classes', type=int, default=80, help='mask head classes')
    parser.add_argument(
        '--head-rows', nargs='+', default=None, help='subset of the head rows (by key)')
    parser.add_argument('--no-memory', action='store_true', help='skip the memory subprocesses')
    parser.add_argument('--head-config', help='config of a trained IFR model (head section)')
    parser.add_argument('--head-checkpoint', help='its checkpoint: trained weights, real RoIs')
    parser.add_argument('--head-images', type=int, default=8,
                        help='test images whose GT boxes give the real RoIs')
    # e2e
    parser.add_argument('--e2e-models', nargs='*', default=['r50', 'mbv2'],
                        choices=('r50', 'mbv2'))
    parser.add_argument('--e2e-custom', nargs=2, metavar=('BASELINE_CFG', 'IFR_CFG'),
                        help='an extra whole-model pair, on its configs\' own data')
    parser.add_argument('--e2e-images', type=int, default=3, help='images timed at inference')
    parser.add_argument('--e2e-dets', type=int, default=100,
                        help='detections per image forced (0: the config\'s own test_cfg)')
    parser.add_argument('--e2e-train-batch', type=int, default=2)
    parser.add_argument('--fruits-root', default='/work/shared/data/fruits_nuts')
    parser.add_argument('--mbv2-checkpoints', nargs=2, metavar=('BASELINE', 'IFR'),
                        help='trained demo checkpoints (default: the demo run\'s, if present)')
    parser.add_argument('--e2e-test-solvers', default=None,
                        help='JSON {label: test_solver}: extra IFR inference rows, e.g. '
                        '\'{"paper": {}}\' (the training solve at test time)')
    parser.add_argument('--e2e-train-solvers', default=None,
                        help='JSON {label: solver options}: extra IFR training rows whose solve '
                        'replaces the config\'s, e.g. \'{"jfb": {"grad": "phantom"}}\'')
    parser.add_argument('--e2e-refiner-from', metavar='CHECKPOINT',
                        help='a trained IFR checkpoint (e.g. the demo\'s) whose mask-head '
                        'refiner weights replace the random ones of randomly initialised '
                        'models: the solver then takes the steps of a trained block')
    parser.add_argument('--e2e-unroll-row', action='store_true',
                        help='also time IFR training in the unrolled warm-up phase')
    # accuracy
    parser.add_argument('--config', help='IFR config (accuracy)')
    parser.add_argument('--checkpoint', help='IFR checkpoint (accuracy)')
    parser.add_argument('--baseline-config')
    parser.add_argument('--baseline-checkpoint')
    parser.add_argument('--max-iters', type=int, nargs='+', default=[1, 2, 3, 5, 8, 15])
    parser.add_argument('--tols', type=float, nargs='+', default=[1e-1, 3e-2, 1e-2, 1e-3])
    parser.add_argument('--outputs', nargs='+', default=['z', 'fz'], choices=('z', 'fz'))
    parser.add_argument('--extra-settings', default=None,
                        help='JSON list of further test_solver dicts to evaluate, e.g. '
                        '\'[{"solver": "fixed_point", "max_iter": 3, "output": "fz"}]\'')
    parser.add_argument('--num-eval-images', type=int, default=None,
                        help='evaluate on the first N test images only')
    # internal
    parser.add_argument('--memory-worker', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if 'accuracy' in args.sections and not (args.config and args.checkpoint):
        parser.error('--sections accuracy needs --config and --checkpoint')
    if bool(args.head_config) != bool(args.head_checkpoint):
        parser.error('--head-config and --head-checkpoint go together')
    return args


def quiet_mmengine() -> None:
    """Keep mmengine's INFO lines (weight init reports, ...) off the output."""
    from mmengine.logging import MMLogger
    MMLogger.get_instance('benchmark_ifr_cost', log_level='WARNING')


def machine() -> Dict:
    cpu = platform.processor()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if 'model name' in line)
    except (OSError, StopIteration):
        pass
    return dict(
        cpu=cpu,
        logical_cpus=os.cpu_count(),
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        load_average=os.getloadavg() if hasattr(os, 'getloadavg') else None)


def median_time(fn: Callable[[], object], repeats: int) -> Tuple[float, List[float]]:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), runs


# ============================================================== solver as released


def _low_rank(left: Tensor, right: Tensor, x: Tensor) -> Tensor:
    """``sum_j left_j (right_j . x)``: ``(b, m, D), (b, m, D), (b, D) -> (b, D)``."""
    return torch.einsum('bm,bmd->bd', torch.einsum('bmd,bd->bm', right, x), left)


def broyden_v0(func, z0: Tensor, max_iter: int, tol: float, stop_mode: str = 'rel',
               memory: Optional[int] = None):
    """The Broyden solver as this project first shipped it (for comparison).

    Six passes over the history per step (``B^-1 dg`` and the next step each
    get a product of their own), zero-filled history of ``max_iter`` slots;
    run with ``solvers.INPLACE_COMPACTION = False`` (the benchmark does) it
    also copies the whole state when a sample finishes.
    """
    from mmifr.ops.solvers import _ActiveSet
    memory = memory or max_iter
    active = _ActiveSet(z0, tol, stop_mode)
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
    from mmifr.ops.solvers import SOLVERS, register_solver
    if 'broyden_v0' not in SOLVERS:
        register_solver('broyden_v0')(broyden_v0)


@contextmanager
def compaction(inplace: bool):
    from mmifr.ops import solvers
    saved = solvers.INPLACE_COMPACTION
    solvers.INPLACE_COMPACTION = inplace
    try:
        yield
    finally:
        solvers.INPLACE_COMPACTION = saved


# ====================================================================== head rows

#: ``key: (label, settings)``; settings: ``stock`` or the IFR ``solver`` (training
#: and, unless ``test_solver`` is given, inference) and ``test_solver``, plus
#: ``legacy`` (solver code as released). ``lever`` says what the row changes.
HEAD_ROWS = {
    'stock': dict(label='stock FCNMaskHead (4 convs)', stock=True),
    'released': dict(
        label='IFR as released (Broyden 15/15, tol 1e-3)',
        solver=dict(PAPER_SOLVER, solver='broyden_v0', backward_solver='broyden_v0'),
        legacy=True,
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
        lever='memory 5 + chunks of 64 (training); tol 3e-2 + output fz (inference)'),
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


def refiner_defaults() -> Tuple[dict, Optional[dict]]:
    """The project's default training solve (IFRRefiner) and the default
    inference solve of the RoI mask heads."""
    import inspect

    from mmifr.models.layers import IFRRefiner
    from mmifr.models.roi_heads import IFRConvFCMaskHead
    solver = inspect.signature(IFRRefiner.__init__).parameters['solver'].default
    return copy.deepcopy(dict(solver)), copy.deepcopy(IFRConvFCMaskHead.default_test_solver)


def row_refiner_cfg(row: dict) -> dict:
    solver_default, test_default = refiner_defaults()
    solver = solver_default if row.get('solver') == 'default' else row['solver']
    test_solver = row.get('test_solver')
    if test_solver == 'default':
        test_solver = test_default
    # An explicit test_solver=None keeps the training solve at inference.
    return dict(type='IFRRefiner', solver=solver, test_solver=test_solver or {})


def build_head(row: dict, args) -> nn.Module:
    from mmdet.registry import MODELS
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


class HeadProblem:
    """RoI features, mask targets and labels for the head rows."""

    def __init__(self, args) -> None:
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
        return self.feats[:self.args.num_rois].contiguous()

    def train_x(self) -> Tensor:
        return self.feats[:self.args.train_rois].contiguous()

    def head(self, row: dict) -> nn.Module:
        args = copy.copy(self.args)
        args.num_classes = self.num_classes
        head = build_head(row, args)
        if self.trained_state is not None and not row.get('stock'):
            head.load_state_dict(self.trained_state)
        return head


def real_roi_features(args, n: int) -> Tuple[Tensor, dict, int]:
    """RoI features of real objects through a trained model: GT boxes of the
    first test images, jittered copies to reach ``n`` RoIs."""
    from mmdet.structures.bbox import bbox2roi
    model, cfg = build_detector(args.head_config, {}, args.head_checkpoint)
    loader = build_loader(cfg, args.head_images)
    gen = torch.Generator().manual_seed(args.seed + 3)
    feats = []
    with torch.no_grad():
        for data in loader:
            data = model.data_preprocessor(data, False)
            x = model.extract_feat(data['inputs'])
            boxes = [s.gt_instances.bboxes for s in data['data_samples']]
            boxes = [b.tensor if hasattr(b, 'tensor') else b for b in boxes]
            feats.append(model.roi_head.mask_roi_extractor(
                x[:model.roi_head.mask_roi_extractor.num_inputs], bbox2roi(boxes)))
            if sum(f.shape[0] for f in feats) >= n:
                break
        base = torch.cat(feats)
        if base.shape[0] < n:
            # Jitter the real RoIs: a real feature plus a little noise.
            idx = torch.randint(0, base.shape[0], (n - base.shape[0], ), generator=gen)
            extra = base[idx] + 0.05 * base.std() * torch.randn(
                base[idx].shape, generator=gen)
            base = torch.cat([base, extra])
    head = model.roi_head.mask_head
    return base[:n].contiguous(), head.state_dict(), head.num_classes


def solver_steps(head: nn.Module) -> Dict[str, float]:
    from mmifr.engine.hooks import find_refiners
    out = {}
    for refiner in find_refiners(head).values():
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


def head_train_step(head: nn.Module, x: Tensor, targets: Tensor, labels: Tensor) -> None:
    head.zero_grad(set_to_none=True)
    preds = head(x)
    loss = head.loss_mask(preds, targets, labels)
    loss.backward()


def head_memory_worker(args) -> None:
    """One row's training peak memory, in this fresh process."""
    quiet_mmengine()
    torch.set_num_threads(args.threads)
    import mmifr  # noqa: F401
    register_v0()
    row = HEAD_ROWS[args.memory_worker]
    problem = HeadProblem(args)
    head = problem.head(row).train()
    x = problem.train_x()
    with compaction(not row.get('legacy')):
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


def current_rss() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def reset_peak_rss() -> None:
    # Writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS.
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


def peak_rss() -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) * 1024
    raise RuntimeError('no VmHWM in /proc/self/status')


def forward_args(args, extra: Dict[str, str]) -> List[str]:
    cmd = []
    for key in ('threads', 'seed', 'num_rois', 'train_rois', 'channels', 'roi_size',
                'num_classes', 'head_config', 'head_checkpoint', 'head_images'):
        value = getattr(args, key)
        if value is not None:
            cmd += [f"--{key.replace('_', '-')}", str(value)]
    for key, value in extra.items():
        cmd += [key, value]
    return cmd


def measure_head_memory(args, key: str) -> int:
    cmd = [sys.executable, osp.abspath(__file__)] + forward_args(args, {'--memory-worker': key})
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='131072', OMP_NUM_THREADS=str(args.threads))
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True, env=env)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX))
    return json.loads(line[len(RESULT_PREFIX):])['peak_rss_increase']


def run_head(args) -> Dict:
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
        with torch.no_grad(), compaction(not HEAD_ROWS[key].get('legacy')):
            head(x_inf)

    def train(key):
        head = heads[key].train()
        with compaction(not HEAD_ROWS[key].get('legacy')):
            head_train_step(head, x_tr, problem.targets, problem.labels)

    log(f'[head] {len(keys)} rows; inference on {args.num_rois} RoIs, training on '
        f'{args.train_rois} RoIs '
        f'({"trained weights, real RoIs" if args.head_checkpoint else "random"})')
    # Warm-up (also gives the solver steps), then interleaved repeats.
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
            results[key]['train_peak_mib'] = measure_head_memory(args, key) / MIB
    stock = results['stock']
    for key in keys:
        res = results[key]
        for metric in ('infer_s', 'train_s', 'train_peak_mib'):
            if metric in res and stock.get(metric):
                res[metric.rsplit('_', 1)[0] + '_ratio'] = res[metric] / stock[metric]
    return dict(
        num_rois=args.num_rois,
        train_rois=args.train_rois,
        roi_shape=[args.channels, args.roi_size, args.roi_size],
        num_classes=problem.num_classes,
        inputs='real RoIs of ' + args.head_checkpoint if args.head_checkpoint else 'random',
        rows=results)


# ============================================================ whole Mask R-CNN

E2E_MODELS = {
    'r50': dict(
        baseline='mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
        ifr='configs/ifr/mask_rcnn_r50_ifr_1x.py',
        data='fruits'),
    'mbv2': dict(
        baseline='configs/ifr/demo/mask-rcnn_mbv2_fpn_shapes_baseline.py',
        ifr='configs/ifr/demo/mask-rcnn_mbv2_fpn_shapes_ifr.py',
        data='config'),
}
DEMO_DIR = 'work_dirs/demo/mask_rcnn_mbv2_shapes'


def resolve_config(path: str) -> str:
    if path.startswith('mmdet::'):
        import mmdet
        return osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', path[len('mmdet::'):])
    return path if osp.isabs(path) or osp.exists(path) else osp.join(ROOT, path)


def build_detector(config: str, options: dict, checkpoint: Optional[str] = None):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    from mmdet.registry import MODELS
    import mmifr  # noqa: F401
    cfg = Config.fromfile(resolve_config(config))
    if options:
        cfg.merge_from_dict(options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
    else:
        model.init_weights()
    from mmifr.engine.hooks import find_refiners
    for refiner in find_refiners(model).values():
        refiner.set_unroll_warmup(None)  # trained models are past the warm-up
    return model.eval(), cfg


def build_loader(cfg, num: Optional[int], dataset_cfg: Optional[dict] = None,
                 batch_size: int = 1):
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader, Subset

    from mmdet.registry import DATASETS
    dataset = DATASETS.build(dataset_cfg or cfg.test_dataloader.dataset)
    if num is not None:
        dataset = Subset(dataset, range(min(num, len(dataset))))
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=pseudo_collate)


def fruits_dataset(cfg, args, train: bool) -> dict:
    """The fruits & nuts photos, with ``cfg``'s pipelines (no random flip)."""
    pipeline = copy.deepcopy(cfg.train_pipeline if train else cfg.test_pipeline)
    pipeline = [t for t in pipeline if t['type'] != 'RandomFlip']
    return dict(
        type='CocoDataset',
        data_root=osp.join(args.fruits_root, ''),
        ann_file='annotations_val.json' if not train else 'annotations_train.json',
        data_prefix=dict(img='images/'),
        metainfo=dict(classes=('date', 'fig', 'hazelnut')),
        filter_cfg=dict(filter_empty_gt=True, min_size=4) if train else None,
        test_mode=not train,
        pipeline=pipeline)


def config_dataset(cfg, train: bool) -> dict:
    ds = copy.deepcopy((cfg.train_dataloader if train else cfg.test_dataloader).dataset)
    if train:
        ds.pipeline = [t for t in ds.pipeline if t['type'] != 'RandomFlip']
    return ds


class MaskHeadTimer:
    """Wall time spent inside a module's forward (forward pre/post hooks)."""

    def __init__(self, module: nn.Module) -> None:
        self.total = 0.0
        self._start = None
        module.register_forward_pre_hook(self._pre)
        module.register_forward_hook(self._post)

    def _pre(self, *_):
        self._start = time.perf_counter()

    def _post(self, *_):
        self.total += time.perf_counter() - self._start


def mbv2_checkpoints(args) -> Optional[Tuple[str, str]]:
    if args.mbv2_checkpoints:
        return tuple(args.mbv2_checkpoints)
    found = []
    for side in ('baseline', 'ifr'):
        marker = osp.join(ROOT, DEMO_DIR, side, 'last_checkpoint')
        if not osp.exists(marker):
            return None
        with open(marker) as f:
            found.append(f.read().strip())
    return tuple(found)


def load_refiner_weights(model: nn.Module, checkpoint: str) -> None:
    """Load the mask-head refiners' weights of a trained IFR ``checkpoint``.

    A randomly initialised refiner hardly contracts, so its solves run to
    ``max_iter``; a trained block's step counts are what a user pays.
    """
    from mmengine.runner.checkpoint import _load_checkpoint
    from mmifr.engine.hooks import find_refiners
    state = _load_checkpoint(checkpoint, map_location='cpu')
    state = state.get('state_dict', state)
    names = [f'roi_head.mask_head.{n}.' for n in find_refiners(model.roi_head.mask_head)]
    weights = {k: v for k, v in state.items() if k.startswith(tuple(names))}
    if not weights:
        raise ValueError(f'{checkpoint} has no weights under {names}')
    result = model.load_state_dict(weights, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys


def run_e2e_model(name: str, args, spec: Optional[dict] = None) -> Dict:
    from mmifr.engine.hooks import find_refiners
    spec = spec or E2E_MODELS[name]
    ckpts = mbv2_checkpoints(args) if name == 'mbv2' else None
    options = {} if not args.e2e_dets else {
        'model.test_cfg.rcnn.score_thr': 0.0,
        'model.test_cfg.rcnn.max_per_img': args.e2e_dets,
        # Enough proposals for the forced detections.
        'model.test_cfg.rpn.max_per_img': max(args.e2e_dets, 100),
    }
    options['model.backbone.init_cfg'] = None
    sides = {}
    for side in ('baseline', 'ifr'):
        torch.manual_seed(args.seed)
        sides[side] = build_detector(spec[side], options, ckpts[side == 'ifr'] if ckpts else None)
    stock, cfg = sides['baseline']
    ifr, _ = sides['ifr']
    if not ckpts:
        # Same weights outside the mask head: same proposals, detections, RoIs.
        shared = {k: v for k, v in stock.state_dict().items()
                  if not k.startswith('roi_head.mask_head.')}
        missing = ifr.load_state_dict(shared, strict=False)
        assert not missing.unexpected_keys, missing.unexpected_keys
        if args.e2e_refiner_from:
            load_refiner_weights(ifr, args.e2e_refiner_from)
    refiners = list(find_refiners(ifr).values())
    config_overrides = [dict(r.test_overrides) for r in refiners]
    # key: (model, test_solver overrides (None: the config's), unroll steps,
    # measure inference, measure training, training solver overrides)
    rows = {
        'stock': (stock, None, None, True, True, None),
        'ifr': (ifr, None, None, True, True, None),
    }
    for label, overrides in json.loads(args.e2e_test_solvers or '{}').items():
        rows[f'ifr, test_solver={label}'] = (ifr, overrides, None, True, False, None)
    for label, overrides in json.loads(args.e2e_train_solvers or '{}').items():
        rows[f'ifr, training solve={label}'] = (ifr, None, None, False, True, overrides)
    if args.e2e_unroll_row:
        rows['ifr, unrolled warm-up phase (4 steps)'] = (ifr, None, 4, False, True, None)
    data_train = fruits_dataset(cfg, args, True) if spec['data'] == 'fruits' else \
        config_dataset(cfg, True)
    data_test = fruits_dataset(cfg, args, False) if spec['data'] == 'fruits' else \
        config_dataset(cfg, False)
    test_batches = list(build_loader(cfg, args.e2e_images, data_test))
    train_batch = next(iter(build_loader(cfg, args.e2e_train_batch, data_train,
                                         batch_size=args.e2e_train_batch)))
    timers = {id(m): MaskHeadTimer(m.roi_head.mask_head) for m in (stock, ifr)}
    log(f'[e2e:{name}] {"trained demo checkpoints" if ckpts else "random init"}, '
        f'{len(test_batches)} test images, train batch of {args.e2e_train_batch}')

    @contextmanager
    def row_state(key):
        model, overrides, unroll, _, _, train_overrides = rows[key]
        solves = [r.deq.options for r in refiners]
        if model is ifr:
            for r, base in zip(refiners, config_overrides):
                r.test_overrides = dict(base if overrides is None else overrides)
                r.set_unroll_warmup(unroll)
                r.deq.options = {**r.deq.options, **(train_overrides or {})}
        try:
            yield model
        finally:
            for r, base, solve in zip(refiners, config_overrides, solves):
                r.test_overrides = dict(base)
                r.set_unroll_warmup(None)
                r.deq.options = solve

    def infer(key) -> List[int]:
        dets = []
        with row_state(key) as model, torch.no_grad():
            model.eval()
            for batch in test_batches:
                data = model.data_preprocessor(batch, False)
                out = model(**data, mode='predict')
                dets += [len(s.pred_instances) for s in out]
        return dets

    def train(key) -> Dict[str, float]:
        with row_state(key) as model:
            model.train()
            model.zero_grad(set_to_none=True)
            torch.manual_seed(args.seed)  # same RoI sampling on every side
            data = model.data_preprocessor(copy.deepcopy(train_batch), True)
            pos = []
            hook = model.roi_head.mask_head.register_forward_pre_hook(
                lambda mod, inp: pos.append(inp[0].shape[0]))
            losses = model(**data, mode='loss')
            hook.remove()
            loss, _ = model.parse_losses(losses)
            loss.backward()
            model.zero_grad(set_to_none=True)
        return dict(pos_rois=sum(pos))

    results = {}
    for key, (model, overrides, unroll, do_infer, do_train, _) in rows.items():  # warm-up
        res = results[key] = dict(
            config=spec['baseline' if model is stock else 'ifr'],
            checkpoint=(ckpts[model is ifr] if ckpts else None))
        if overrides is not None:
            res['test_solver'] = overrides
        if do_infer:
            res['dets_per_image'] = statistics.mean(infer(key))
            res['infer_solver'] = solver_steps(model)
        if do_train:
            res.update(train(key))
            res['train_solver'] = solver_steps(model)
        log(f'[e2e:{name}] warm-up {key}: {res}')
    runs = {k: dict(infer=[], mask=[], train=[]) for k in rows}
    n_img = len(test_batches)
    for rep in range(args.repeats):
        for key, (model, _, _, do_infer, do_train, _) in rows.items():
            timer = timers[id(model)]
            if do_infer:
                timer.total = 0.0
                runs[key]['infer'].append(median_time(lambda: infer(key), 1)[0] / n_img)
                runs[key]['mask'].append(timer.total / n_img)
            if do_train:
                runs[key]['train'].append(median_time(lambda: train(key), 1)[0])
            solver_steps(model)
            log(f'[e2e:{name}] repeat {rep + 1} {key}: ' + ', '.join(
                f'{k} {v[-1]:.3f}s' for k, v in runs[key].items() if v))
    for key in rows:
        res = results[key]
        for metric, run in (('infer_s_per_img', 'infer'), ('mask_head_s_per_img', 'mask'),
                            ('train_step_s', 'train')):
            if runs[key][run]:
                res[metric] = statistics.median(runs[key][run])
        res['runs'] = runs[key]
        for metric in ('infer_s_per_img', 'train_step_s'):
            if metric in res:
                res[metric.split('_s')[0] + '_ratio'] = res[metric] / results['stock'][metric]
    weights = 'trained demo checkpoints' if ckpts else 'random init (shared outside the mask head)'
    if args.e2e_refiner_from and not ckpts:
        weights += f'; IFR refiner weights from {args.e2e_refiner_from}'
    return dict(
        weights=weights,
        data=(('fruits_nuts ' + args.fruits_root)
              if spec['data'] == 'fruits' else 'config (data/shapes)'),
        forced_detections=(f'test_cfg.rcnn.score_thr=0, max_per_img={args.e2e_dets}'
                           if args.e2e_dets else "none: the config's own test_cfg"),
        ifr_test_solver=config_overrides[0] if config_overrides else None,
        rows=results)


def run_e2e(args) -> Dict:
    out = {name: run_e2e_model(name, args) for name in args.e2e_models}
    if args.e2e_custom:
        spec = dict(baseline=args.e2e_custom[0], ifr=args.e2e_custom[1], data='config')
        out['custom'] = run_e2e_model('custom', args, spec)
    return out


# ================================================================ accuracy vs cost


def accuracy_settings(args) -> List[Tuple[str, dict]]:
    settings = []
    for output in args.outputs:
        for it in args.max_iters:
            settings.append((f'max_iter={it}, tol=1e-3, output={output}',
                             dict(max_iter=it, tol=1e-3, output=output)))
        for tol in args.tols:
            if tol == 1e-3:
                continue  # the max_iter=15 row above
            settings.append((f'max_iter=15, tol={tol:g}, output={output}',
                             dict(max_iter=15, tol=tol, output=output)))
    for extra in json.loads(args.extra_settings or '[]'):
        settings.append((', '.join(f'{k}={v}' for k, v in extra.items()), dict(extra)))
    _, test_default = refiner_defaults()
    if test_default:
        settings.append(('project default test_solver ' + json.dumps(test_default),
                         dict(test_default)))
    return settings


def run_accuracy(args) -> Dict:
    from mmengine.evaluator import Evaluator

    from mmdet.structures import DetDataSample
    from mmifr.engine.hooks import find_refiners
    model, cfg = build_detector(args.config, {}, args.checkpoint)
    refiners = list(find_refiners(model).values())
    if not refiners:
        raise ValueError(f'{args.config} has no IFRRefiner')
    base_overrides = [dict(r.test_overrides) for r in refiners]
    train_solver = dict(refiners[0].deq.options)
    settings = accuracy_settings(args)
    loader = build_loader(cfg, args.num_eval_images)
    dataset = loader.dataset
    metainfo = (dataset.dataset if hasattr(dataset, 'dataset') else dataset).metainfo

    def evaluator():
        ev = Evaluator(copy.deepcopy(cfg.test_evaluator))
        ev.dataset_meta = metainfo
        return ev

    evaluators = {name: evaluator() for name, _ in settings}
    times = {name: [] for name, _ in settings}
    steps = {name: [] for name, _ in settings}
    shared_times = []
    baseline = None
    if args.baseline_config and args.baseline_checkpoint:
        bmodel = build_detector(args.baseline_config, {}, args.baseline_checkpoint)[0]
        baseline = dict(model=bmodel, evaluator=evaluator(), times=[], mask_times=[],
                        timer=MaskHeadTimer(bmodel.roi_head.mask_head))
    log(f'[accuracy] {len(settings)} solver settings on {len(loader)} images')
    with torch.no_grad():
        for i, batch in enumerate(loader):
            data = model.data_preprocessor(batch, False)
            samples = data['data_samples']
            start = time.perf_counter()
            x = model.extract_feat(data['inputs'])
            rpn = model.rpn_head.predict(x, samples, rescale=False)
            metas = [s.metainfo for s in samples]
            dets = model.roi_head.predict_bbox(
                x, metas, rpn, rcnn_test_cfg=model.roi_head.test_cfg, rescale=False)
            shared_times.append(time.perf_counter() - start)
            for name, overrides in settings:
                for r in refiners:
                    # Relative to the training solve, not to the config's
                    # own test_solver.
                    r.test_overrides = dict(overrides)
                    r.pop_stats()
                results = copy.deepcopy(dets)
                start = time.perf_counter()
                results = model.roi_head.predict_mask(x, metas, results, rescale=True)
                times[name].append(time.perf_counter() - start)
                for r in refiners:
                    steps[name] += [s.forward.nstep for s in r.pop_stats()]
                out = model.add_pred_to_datasample(
                    [DetDataSample(metainfo=s.metainfo) for s in samples], results)
                evaluators[name].process(data_samples=out, data_batch=batch)
            if baseline is not None:
                bmodel, timer = baseline['model'], baseline['timer']
                timer.total = 0.0
                start = time.perf_counter()
                out = bmodel(**bmodel.data_preprocessor(batch, False), mode='predict')
                baseline['times'].append(time.perf_counter() - start)
                baseline['mask_times'].append(timer.total)
                baseline['evaluator'].process(data_samples=out, data_batch=batch)
            if (i + 1) % 10 == 0:
                log(f'[accuracy] {i + 1}/{len(loader)} images')
    for r, base in zip(refiners, base_overrides):
        r.test_overrides = base
    n = len(shared_times)
    shared = sum(shared_times) / n
    rows = []
    for name, overrides in settings:
        metrics = evaluators[name].evaluate(n)
        nstep = torch.cat(steps[name]).float() if steps[name] else torch.zeros(1)
        mask_s = sum(times[name]) / n
        rows.append(dict(
            setting=name,
            test_solver=overrides,
            segm_mAP=metrics.get('coco/segm_mAP'),
            segm_mAP_50=metrics.get('coco/segm_mAP_50'),
            bbox_mAP=metrics.get('coco/bbox_mAP'),
            solver_steps_mean=nstep.mean().item(),
            solver_steps_max=nstep.max().item(),
            mask_branch_s_per_img=mask_s,
            total_s_per_img=shared + mask_s))
    out = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        training_solver={k: train_solver[k] for k in ('solver', 'max_iter', 'tol')},
        images=n,
        shared_s_per_img=shared,
        note='backbone + RPN + box head run once per image (shared_s_per_img); '
        'the mask branch (RoI extraction, mask head, mask paste) once per setting',
        rows=rows)
    reference = next((r for r in rows if r['test_solver'] == dict(max_iter=15, tol=1e-3,
                                                                  output='z')), None)
    if reference is not None:
        out['reference'] = reference['setting']
        for r in rows:
            if r['segm_mAP'] is not None and reference['segm_mAP'] is not None:
                r['segm_mAP_delta'] = r['segm_mAP'] - reference['segm_mAP']
            r['mask_branch_ratio_vs_reference'] = (
                r['mask_branch_s_per_img'] / reference['mask_branch_s_per_img'])
    if baseline is not None:
        metrics = baseline['evaluator'].evaluate(n)
        out['baseline'] = dict(
            config=args.baseline_config,
            checkpoint=args.baseline_checkpoint,
            segm_mAP=metrics.get('coco/segm_mAP'),
            bbox_mAP=metrics.get('coco/bbox_mAP'),
            total_s_per_img=sum(baseline['times']) / n,
            mask_head_s_per_img=sum(baseline['mask_times']) / n)
    return out


# ======================================================================== report


def _f(value, fmt='{:.3f}') -> str:
    if value is None:
        return '-'
    return fmt.format(value)


def markdown(report: Dict) -> str:
    m = report['machine']
    lines = [
        '# IFR cost against the stock mask head', '',
        f"Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, {m['threads']} intra-op "
        f"thread(s), torch {m['torch']}; load average at start {m['load_average']}. "
        f"Times: median of {report['repeats']} runs after a warm-up.", ''
    ]
    head = report.get('head')
    if head:
        lines += [
            f"## Mask head alone ({head['inputs']})", '',
            f"Inference on {head['num_rois']} RoIs, training step (forward + mask loss + "
            f"backward) and its peak memory on {head['train_rois']} RoIs of "
            f"{'x'.join(map(str, head['roi_shape']))}. Peak memory: peak RSS increase of one "
            'training step in a fresh process (after a warm-up step).', '',
            '| row | infer [s] | infer / stock | fwd steps (infer) | train [s] | train / stock '
            '| fwd / bwd steps (train) | train peak [MiB] | peak / stock | lever |',
            '|---|---|---|---|---|---|---|---|---|---|'
        ]
        for key, r in head['rows'].items():
            inf, tr = r.get('infer_steps', {}), r.get('train_steps', {})
            tr_steps = (f"{_f(tr.get('fwd_steps'), '{:.1f}')} / {_f(tr.get('bwd_steps'), '{:.1f}')}"
                        if tr else '-')
            lines.append(
                f"| {r['label']} | {_f(r.get('infer_s'))} | {_f(r.get('infer_ratio'), '{:.2f}')} | "
                f"{_f(inf.get('fwd_steps'), '{:.1f}')} | {_f(r.get('train_s'))} | "
                f"{_f(r.get('train_ratio'), '{:.2f}')} | {tr_steps} | "
                f"{_f(r.get('train_peak_mib'), '{:.0f}')} | "
                f"{_f(r.get('train_peak_ratio'), '{:.2f}')} | {r.get('lever', '')} |")
        lines.append('')
    for name, e2e in (report.get('e2e') or {}).items():
        lines += [
            f'## Whole Mask R-CNN: {name}', '',
            f"Weights: {e2e['weights']}. Data: {e2e['data']}. Detections forced at "
            f"inference: {e2e['forced_detections']}. IFR's own "
            f"test_solver (row `ifr`): {e2e.get('ifr_test_solver')}.", '',
            '| side | infer [s/img] | infer / stock | of which mask head [s/img] | dets/img | '
            'fwd steps (infer) | train step [s] | train / stock | pos RoIs/step | '
            'fwd / bwd steps (train) |', '|---|---|---|---|---|---|---|---|---|---|'
        ]
        for key, r in e2e['rows'].items():
            inf, tr = r.get('infer_solver', {}), r.get('train_solver', {})
            tr_steps = (f"{_f(tr.get('fwd_steps'), '{:.1f}')} / {_f(tr.get('bwd_steps'), '{:.1f}')}"
                        if tr else '-')
            ratio = _f(r.get('infer_ratio'), '{:.2f}')
            lines.append(
                f"| {key} | {_f(r.get('infer_s_per_img'))} | {ratio} | "
                f"{_f(r.get('mask_head_s_per_img'))} | {_f(r.get('dets_per_image'), '{:.0f}')} | "
                f"{_f(inf.get('fwd_steps'), '{:.1f}')} | {_f(r.get('train_step_s'))} | "
                f"{_f(r.get('train_ratio'), '{:.2f}')} | {r.get('pos_rois', '-')} | {tr_steps} |")
        lines.append('')
    acc = report.get('accuracy')
    if acc:
        lines += [
            '## Mask AP against the inference solve (paper Table 7 redone)', '',
            f"Model: `{acc['config']}` / `{acc['checkpoint']}`, {acc['images']} test images; "
            f"trained with {acc['training_solver']}. Backbone + RPN + box head: "
            f"{acc['shared_s_per_img']:.3f} s/img (shared by all rows).", '',
            '| inference solve | mask AP | d AP vs 15 it | AP50 | steps (mean / max) | '
            'mask branch [s/img] | vs 15 it | total [s/img] |', '|---|---|---|---|---|---|---|---|'
        ]
        for r in acc['rows']:
            ap = r['segm_mAP']
            delta = 100 * (r.get('segm_mAP_delta') or 0.0)
            lines.append(
                f"| {r['setting']} | {_f(ap and 100 * ap, '{:.1f}')} | {_f(delta, '{:+.1f}')} | "
                f"{_f(r['segm_mAP_50'] and 100 * r['segm_mAP_50'], '{:.1f}')} | "
                f"{r['solver_steps_mean']:.1f} / {r['solver_steps_max']:.0f} | "
                f"{_f(r['mask_branch_s_per_img'])} | "
                f"{_f(r.get('mask_branch_ratio_vs_reference'), '{:.2f}')} | "
                f"{_f(r['total_s_per_img'])} |")
        if acc.get('baseline'):
            b = acc['baseline']
            lines.append(
                f"| stock head (`{osp.basename(b['checkpoint'])}`) | "
                f"{_f(b['segm_mAP'] and 100 * b['segm_mAP'], '{:.1f}')} | | | | "
                f"mask head {_f(b['mask_head_s_per_img'])} | | {_f(b['total_s_per_img'])} |")
        lines.append('')
    return '\n'.join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.memory_worker:
        head_memory_worker(args)
        return
    quiet_mmengine()
    torch.set_num_threads(args.threads)
    import mmifr  # noqa: F401
    report = dict(machine=machine(), repeats=args.repeats, argv=sys.argv[1:] if argv is None
                  else list(argv))
    started = time.time()
    if 'head' in args.sections:
        report['head'] = run_head(args)
    if 'e2e' in args.sections:
        report['e2e'] = run_e2e(args)
    if 'accuracy' in args.sections:
        report['accuracy'] = run_accuracy(args)
    report['wall_s'] = time.time() - started
    report['load_average_end'] = os.getloadavg()
    table = markdown(report)
    os.makedirs(args.out_dir, exist_ok=True)
    stem = osp.join(args.out_dir, args.name)
    with open(stem + '.json', 'w') as f:
        json.dump(report, f, indent=2, default=str)
    with open(stem + '.md', 'w') as f:
        f.write(table + '\n')
    print(table)
    log(f'written {stem}.json and {stem}.md')


if __name__ == '__main__':
    main()
