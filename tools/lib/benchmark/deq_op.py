"""mmifr's DEQ op against torchdeq on the IFR-shaped problem: the problem,
the three sides (mmifr, torchdeq, mmdet's 4-conv tower as a scale reference),
the measurements and their table. ``tools/analysis_tools/benchmark_deq.py``
is the command line; what is measured and how is in its docstring.
"""
import statistics
import time
from typing import Callable, Dict, List, Tuple

import torch
from torch import Tensor, nn

from ..memory import MIB
from ..progress import log

#: The DEQ implementations compared (the tower is the scale reference).
SIDES = ('mmifr', 'torchdeq')


class CountedBlock:
    """Calls ``F`` and counts what the caller does with it.

    Attributes:
        calls (int): evaluations of ``F``.
        rows (int): samples covered by those evaluations.
        graph_calls (int): evaluations that built an autograd graph.
        vjps (int): vector-Jacobian products through ``F``'s output.
    """

    def __init__(self, block: nn.Module) -> None:
        self.block = block
        self.reset()

    def reset(self) -> None:
        self.calls = self.rows = self.graph_calls = self.vjps = 0

    def snapshot(self) -> Dict[str, int]:
        return dict(
            calls=self.calls, rows=self.rows, graph_calls=self.graph_calls, vjps=self.vjps)

    def _count_vjp(self, grad: Tensor) -> None:
        self.vjps += 1

    def __call__(self, h: Tensor, x: Tensor) -> Tensor:
        out = self.block(h, x)
        self.calls += 1
        self.rows += h.shape[0]
        if out.requires_grad:
            self.graph_calls += 1
            out.register_hook(self._count_vjp)
        return out


def build_problem(args) -> Tuple[nn.Module, Tensor, Tensor]:
    """The block, the RoI features ``x`` ``(N, C, S, S)`` and a loss probe.

    Seeded, so every process builds bit-identical tensors.
    """
    from mmifr.models.layers import DoubleResidualBlock

    torch.manual_seed(args.seed)
    block = DoubleResidualBlock(channels=args.channels, form='bounded', weight_norm=True)
    block.init_weights()
    shape = (args.num_rois, args.channels, args.size, args.size)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(args.seed + 1))
    probe = torch.randn(shape, generator=torch.Generator().manual_seed(args.seed + 2))
    return block, x.requires_grad_(), probe


class MmifrSide:
    """``mmifr.ops.deq_fixed_point``: per-sample stopping, output ``h*``."""

    name = 'mmifr'

    def __init__(self, counted: CountedBlock, args) -> None:
        from mmifr.ops import deq_fixed_point
        self.counted, self.module = counted, counted.block
        self.params = list(counted.block.parameters())
        self.options = dict(
            solver='broyden',
            max_iter=args.max_iter,
            tol=args.tol,
            stop_mode='rel',
            grad='ift',
            backward_solver='broyden',
            backward_max_iter=args.max_iter,
            backward_tol=args.tol)
        self.deq = deq_fixed_point
        self.stats = None

    def forward(self, x: Tensor) -> Tensor:
        h, self.stats = self.deq(self.counted, x, params=self.params, **self.options)
        return h

    def solver_info(self) -> Dict[str, float]:
        fwd, bwd = self.stats.forward, self.stats.backward
        out = dict(
            fwd_reported_rel_residual=fwd.rel_residual.mean().item(),
            fwd_nstep_mean=fwd.nstep.float().mean().item())
        if bwd is not None:
            out['bwd_rel_residual'] = bwd.rel_residual.mean().item()
            out['bwd_converged'] = bwd.converged.float().mean().item()
            # Adjoint steps a sample needed; each VJP still covers the batch.
            out['bwd_nstep_mean'] = bwd.nstep.float().mean().item()
        return out


class TorchdeqSide:
    """``torchdeq.get_deq(...)`` with ``ift=True``: batch-wide stopping, output
    ``F(z*)`` (one extra graph-building ``F`` call after the solve)."""

    name = 'torchdeq'

    def __init__(self, counted: CountedBlock, args) -> None:
        from torchdeq import get_deq
        self.counted, self.module = counted, counted.block
        self.deq = get_deq(
            core='indexing',
            ift=True,
            f_solver='broyden',
            b_solver='broyden',
            f_max_iter=args.max_iter,
            b_max_iter=args.max_iter,
            f_tol=args.tol,
            b_tol=args.tol,
            f_stop_mode='rel',
            b_stop_mode='rel')
        self.deq.train()
        self.info, self.bwd_info = None, None

    def _writer(self, info) -> None:
        self.bwd_info = info

    def forward(self, x: Tensor) -> Tensor:
        z_out, self.info = self.deq(
            lambda z: self.counted(z, x), torch.zeros_like(x), backward_writer=self._writer)
        return z_out[-1]

    def solver_info(self) -> Dict[str, float]:
        out = dict(fwd_reported_rel_residual=self.info['rel_lowest'].mean().item())
        if self.bwd_info is not None:
            out['bwd_rel_residual'] = self.bwd_info['rel_lowest'].mean().item()
            out['bwd_converged'] = (self.bwd_info['rel_lowest'] <= self.deq.b_tol).float().mean(
            ).item()
        return out


class TowerSide:
    """mmdet's mask tower: ``FCNMaskHead``'s 4 conv3x3 + ReLU, 256 channels."""

    name = 'tower'

    def __init__(self, args) -> None:
        from mmdet.models.roi_heads.mask_heads import FCNMaskHead
        torch.manual_seed(args.seed)
        head = FCNMaskHead(num_convs=4, in_channels=args.channels, conv_out_channels=args.channels)
        head.init_weights()
        self.module = head.convs

    def forward(self, x: Tensor) -> Tensor:
        for conv in self.module:
            x = conv(x)
        return x


def build_side(name: str, block: nn.Module, args):
    if name == 'tower':
        return TowerSide(args)
    return (MmifrSide if name == 'mmifr' else TorchdeqSide)(CountedBlock(block), args)


def saved_tensor_bytes(fn: Callable[[], Tensor]) -> Tuple[Tensor, int]:
    """Run ``fn`` and sum the bytes autograd saves for backward meanwhile."""
    sizes: List[int] = []

    def pack(tensor):
        sizes.append(tensor.numel() * tensor.element_size())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = fn()
    return out, sum(sizes)


def train_step(side, x: Tensor, probe: Tensor) -> Tuple[float, float, Tensor]:
    """Forward + backward of a random linear loss; returns both timings."""
    start = time.perf_counter()
    h = side.forward(x)
    fwd = time.perf_counter() - start
    (h * probe).mean().backward()
    return fwd, time.perf_counter() - start, h.detach()


def zero_grads(side, x: Tensor) -> None:
    x.grad = None
    side.module.zero_grad(set_to_none=True)


@torch.no_grad()
def output_residual(block: nn.Module, h: Tensor, x: Tensor) -> Tensor:
    fh = block(h, x)
    return (fh - h).flatten(1).norm(dim=1) / fh.flatten(1).norm(dim=1)


def agreement(a: Tensor, b: Tensor) -> Dict[str, float]:
    a, b = a.flatten().double(), b.flatten().double()
    return dict(
        cosine=torch.cosine_similarity(a, b, dim=0).item(),
        rel_diff=((a - b).norm() / b.norm()).item())


def run_benchmark(args, measure_memory: Callable[[object, str], Dict[str, int]]) -> Dict:
    """Time, count and compare the sides on ``args``' problem.

    Args:
        args: the tool's options (``num_rois``, ``channels``, ``size``,
            ``threads``, ``max_iter``, ``tol``, ``seed``, ``repeats``).
        measure_memory: ``(args, side name) -> {'peak_rss_increase',
            'saved_for_backward'}``, one side in a fresh process.

    Returns:
        dict: ``config``, per-side ``results``, ``output_agreement`` and
        ``grad_agreement``.
    """
    torch.set_num_threads(args.threads)
    log(f'problem: {args.num_rois} RoIs x {args.channels}x{args.size}x{args.size}, '
        f'Broyden {args.max_iter}/{args.max_iter} it, rel tol {args.tol}, '
        f'{args.threads} thread(s), {args.repeats} repeat(s)')
    memory = {name: measure_memory(args, name) for name in (*SIDES, 'tower')}

    block, x, probe = build_problem(args)
    params = list(block.parameters())
    sides = {name: build_side(name, block, args) for name in (*SIDES, 'tower')}

    # Warm-up run: also gives the counters, residuals and gradients.
    results: Dict[str, Dict] = {}
    grads: Dict[str, List[Tensor]] = {}
    outputs: Dict[str, Tensor] = {}
    for name, side in sides.items():
        zero_grads(side, x)
        counted = getattr(side, 'counted', None)
        fwd_work = bwd_work = None
        if counted is not None:
            counted.reset()
            start = time.perf_counter()
            h = side.forward(x)
            fwd_work = counted.snapshot()
            counted.reset()
            (h * probe).mean().backward()
            bwd_work = counted.snapshot()
            elapsed = time.perf_counter() - start
            res = output_residual(block, h, x)
            outputs[name] = h.detach()
            grads[name] = [x.grad.clone(), *(p.grad.clone() for p in params)]
            results[name] = dict(
                forward_work=fwd_work,
                backward_work=bwd_work,
                output_rel_residual_mean=res.mean().item(),
                output_rel_residual_max=res.max().item(),
                **side.solver_info())
        else:
            elapsed = train_step(side, x, probe)[1]
            results[name] = {}
        log(f'[warm-up] {name}: forward+backward {elapsed:.2f}s')

    times = {name: dict(forward=[], forward_backward=[]) for name in sides}
    for rep in range(args.repeats):
        for name, side in sides.items():
            zero_grads(side, x)
            fwd, total, _ = train_step(side, x, probe)
            times[name]['forward'].append(fwd)
            times[name]['forward_backward'].append(total)
            log(f'[repeat {rep + 1}/{args.repeats}] {name}: forward {fwd:.2f}s, '
                f'forward+backward {total:.2f}s')

    for name in sides:
        results[name]['time'] = {
            key: dict(median=statistics.median(vals), min=min(vals), runs=vals)
            for key, vals in times[name].items()
        }
        results[name]['memory'] = memory[name]

    names = ['x', *(n for n, _ in block.named_parameters())]
    grad_agreement = {
        n: agreement(a, b)
        for n, a, b in zip(names, grads['mmifr'], grads['torchdeq'])
    }
    grad_agreement['all_params'] = agreement(
        torch.cat([g.flatten() for g in grads['mmifr'][1:]]),
        torch.cat([g.flatten() for g in grads['torchdeq'][1:]]))
    return dict(
        config=dict(
            num_rois=args.num_rois,
            channels=args.channels,
            size=args.size,
            max_iter=args.max_iter,
            tol=args.tol,
            threads=args.threads,
            repeats=args.repeats,
            seed=args.seed,
            torch=torch.__version__,
            torchdeq=_version('torchdeq')),
        results=results,
        output_agreement=agreement(outputs['mmifr'], outputs['torchdeq']),
        grad_agreement=grad_agreement)


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(package)
    except PackageNotFoundError:
        return 'unknown'


def markdown(report: Dict) -> str:
    res = report['results']
    m, t, tower = res['mmifr'], res['torchdeq'], res['tower']

    def row(label, a, b, fmt='{:.3g}'):
        ratio = a / b if b else float('nan')
        return f'| {label} | {fmt.format(a)} | {fmt.format(b)} | {ratio:.2f} |'

    def work(side, phase, key):
        return side[f'{phase}_work'][key]

    lines = [
        '| metric | mmifr | torchdeq | mmifr / torchdeq |',
        '|---|---|---|---|',
        row('forward time, median [s]', m['time']['forward']['median'],
            t['time']['forward']['median']),
        row('forward time, min [s]', m['time']['forward']['min'], t['time']['forward']['min']),
        row('forward+backward time, median [s]', m['time']['forward_backward']['median'],
            t['time']['forward_backward']['median']),
        row('forward+backward time, min [s]', m['time']['forward_backward']['min'],
            t['time']['forward_backward']['min']),
        row('F calls, forward (incl. graph-building)', work(m, 'forward', 'calls'),
            work(t, 'forward', 'calls'), '{:d}'),
        row('F sample-evaluations, forward', work(m, 'forward', 'rows'),
            work(t, 'forward', 'rows'), '{:d}'),
        row('F calls, backward (re-evaluations)', work(m, 'backward', 'calls'),
            work(t, 'backward', 'calls'), '{:d}'),
        row('VJPs through F, backward', work(m, 'backward', 'vjps'), work(t, 'backward', 'vjps'),
            '{:d}'),
        row('output rel. residual, mean', m['output_rel_residual_mean'],
            t['output_rel_residual_mean']),
        row('output rel. residual, max', m['output_rel_residual_max'],
            t['output_rel_residual_max']),
        row('adjoint rel. residual (reported), mean', m['bwd_rel_residual'],
            t['bwd_rel_residual']),
        row('peak RSS increase, fwd+bwd [MiB]', m['memory']['peak_rss_increase'] / MIB,
            t['memory']['peak_rss_increase'] / MIB, '{:.0f}'),
        row('saved for backward [MiB]', m['memory']['saved_for_backward'] / MIB,
            t['memory']['saved_for_backward'] / MIB, '{:.1f}'),
        '',
        '| reference: mmdet 4-conv mask tower | forward [s] | forward+backward [s] | '
        'peak RSS increase [MiB] |',
        '|---|---|---|---|',
        f"| FCNMaskHead.convs (median) | {tower['time']['forward']['median']:.3g} | "
        f"{tower['time']['forward_backward']['median']:.3g} | "
        f"{tower['memory']['peak_rss_increase'] / MIB:.0f} |",
        '',
        '| gradient (mmifr vs torchdeq) | cosine | relative difference |',
        '|---|---|---|',
    ]
    agree = dict(report['grad_agreement'], output=report['output_agreement'])
    for name, val in agree.items():
        lines.append(f"| {name} | {val['cosine']:.6f} | {val['rel_diff']:.3g} |")
    return '\n'.join(lines)
