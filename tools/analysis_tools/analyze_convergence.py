"""Convergence of a trained IFR refiner on real RoIs (paper Sec. 3.5).

RoI features ``X`` of real objects (the ground-truth boxes of the first test
images) are extracted through the model's own backbone, neck and mask RoI
extractor; on them the tool measures:

* **residual traces**: ``||F(h) - h|| / ||F(h)||`` per RoI at every
  evaluation of ``F``, for a long plain fixed-point iteration
  (``--fp-steps``) and for Broyden (``--broyden-steps``) from ``h = 0``;
* **spectral radius** of the block's Jacobian ``J = dF/dh`` at the
  equilibrium ``H*`` of every RoI, by power iteration with vector-Jacobian
  products (``J^T`` has the eigenvalues of ``J``); ``< 1`` means the
  equilibrium attracts plain iteration locally, at rate ``rho`` per step;
* **DEQ vs unrolled**: the difference between ``H*`` as the model computes it
  at inference (its ``test_solver``, through :class:`IFRRefiner`) and the end
  of the long fixed-point iteration (the paper reports ``< e^-8``).

Writes ``convergence.json`` and ``convergence.png`` (traces, spectral
radii) under ``--out-dir``.

Example::

    python tools/analysis_tools/analyze_convergence.py \\
        configs/ifr/demo/mask-rcnn_mbv2_fpn_shapes_ifr.py \\
        work_dirs/demo/mask_rcnn_mbv2_shapes/ifr/iter_450.pth --out-dir work_dirs/convergence
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmifr.engine.hooks import find_refiners  # noqa: E402
from tools.lib.models import NO_PRETRAINED_BACKBONE, build_detector, build_loader  # noqa: E402
from tools.lib.progress import log, quiet_mmengine  # noqa: E402
from tools.lib.roi_features import gt_roi_features  # noqa: E402

E_MINUS_8 = math.exp(-8)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='config of an IFR model')
    parser.add_argument('checkpoint', help='its checkpoint (or "none": random weights)')
    parser.add_argument('--out-dir', default='work_dirs/convergence')
    parser.add_argument('--num-images', type=int, default=8, help='test images used')
    parser.add_argument('--max-rois', type=int, default=64, help='RoIs analysed at most')
    parser.add_argument('--fp-steps', type=int, default=200, help='fixed-point trace length')
    parser.add_argument('--broyden-steps', type=int, default=40, help='Broyden trace length')
    parser.add_argument('--power-iters', type=int, default=50, help='power iterations')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


# ---------------------------------------------------------------- measurements
#
# These functions take any block ``F(h, x)`` whose samples are independent
# along dim 0 (they are also what the tests exercise).


def relative_residual(fh: Tensor, h: Tensor) -> Tensor:
    """``||F(h) - h|| / ||F(h)||`` per sample, ``(N,)``."""
    diff = (fh - h).flatten(1).norm(dim=1)
    return diff / fh.flatten(1).norm(dim=1).clamp_min(1e-12)


@torch.no_grad()
def fixed_point_trace(block: Callable, x: Tensor, steps: int,
                      h0: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Plain iteration ``h <- F(h, x)`` from ``h0`` (zeros).

    Returns:
        tuple[Tensor, Tensor]: ``(steps, N)`` relative residual of the iterate
        fed to each evaluation, and the last iterate ``F(h)``.
    """
    h = torch.zeros_like(x) if h0 is None else h0
    trace = []
    for _ in range(steps):
        fh = block(h, x)
        trace.append(relative_residual(fh, h))
        h = fh
    return torch.stack(trace), h


@torch.no_grad()
def broyden_trace(block: Callable, x: Tensor, steps: int) -> Tensor:
    """Relative residual of every iterate Broyden's method evaluates, ``(steps, N)``.

    Runs mmifr's solver with a vanishing tolerance, so every sample takes all
    ``steps`` evaluations; samples that hit NaN/Inf are padded with NaN.
    """
    from mmifr.ops.solvers import broyden
    n = x.shape[0]
    shape = x.shape[1:]
    trace = torch.full((steps, n), float('nan'))
    count = torch.zeros(n, dtype=torch.long)

    def func(z: Tensor, index: Tensor) -> Tensor:
        h = z.view(-1, *shape)
        fh = block(h, x[index])
        res = relative_residual(fh, h).float().cpu()
        idx = index.cpu()
        trace[count[idx].clamp_max(steps - 1), idx] = res
        count[idx] += 1
        return fh.flatten(1)

    broyden(func, torch.zeros(n, x[0].numel(), dtype=x.dtype), max_iter=steps, tol=1e-30)
    return trace


def spectral_radius(block: Callable, h: Tensor, x: Tensor, iters: int = 50,
                    seed: int = 0) -> Tensor:
    """Per-sample spectral radius of ``J = dF/dh`` at ``h``, by power iteration.

    Iterates ``v <- v J / ||v J||`` with vector-Jacobian products (``J^T``
    has the spectrum of ``J``) and returns the geometric mean growth
    ``(||v_k J^m|| / ||v_k||)^(1/m)`` over the last half of the iterations,
    which is robust to a complex-conjugate dominant pair (where a single
    step's ratio oscillates).

    Returns:
        Tensor: ``(N,)`` estimates of ``rho(J)``.
    """
    gen = torch.Generator().manual_seed(seed)
    h = h.detach().requires_grad_()
    with torch.enable_grad():
        fh = block(h, x.detach())
    v = torch.randn(h.shape, generator=gen, dtype=h.dtype).to(h.device)
    v = v / v.flatten(1).norm(dim=1).view(-1, *[1] * (h.dim() - 1))
    log_growth = []
    for _ in range(iters):
        vj, = torch.autograd.grad(fh, h, v, retain_graph=True)
        norm = vj.flatten(1).norm(dim=1)
        log_growth.append(norm.clamp_min(1e-30).log())
        v = vj / norm.clamp_min(1e-30).view(-1, *[1] * (h.dim() - 1))
    tail = torch.stack(log_growth[iters // 2:])
    return tail.mean(dim=0).exp().detach()


def summarize(values: Tensor) -> Dict[str, float]:
    values = values.double()
    finite = values[torch.isfinite(values)]
    if finite.numel() == 0:
        return dict(count=values.numel(), finite=0)
    return dict(
        count=values.numel(),
        finite=int(finite.numel()),
        mean=finite.mean().item(),
        median=finite.median().item(),
        min=finite.min().item(),
        max=finite.max().item())


def trace_summary(trace: Tensor) -> Dict[str, List[float]]:
    """Per-step median and quartiles across samples (NaN-aware)."""
    q = torch.nanquantile(trace.double(), torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64),
                          dim=1)
    return dict(q25=q[0].tolist(), median=q[1].tolist(), q75=q[2].tolist(),
                max=torch.nan_to_num(trace.double(), nan=-1).max(dim=1).values.tolist())


def analyze_block(block: Callable, x: Tensor, h_deq: Tensor, args) -> Dict:
    """Every measurement on one block and one batch of injections ``x``."""
    fp, h_long = fixed_point_trace(block, x, args.fp_steps)
    bt = broyden_trace(block, x, args.broyden_steps)
    rho_deq = spectral_radius(block, h_deq, x, args.power_iters, args.seed)
    rho_long = spectral_radius(block, h_long, x, args.power_iters, args.seed)
    diff = (h_deq - h_long).flatten(1).norm(dim=1)
    rel_diff = diff / h_long.flatten(1).norm(dim=1).clamp_min(1e-12)
    per_elem = (h_deq - h_long).abs().flatten(1).mean(dim=1)
    with torch.no_grad():
        res_deq = relative_residual(block(h_deq, x), h_deq)
        res_long = relative_residual(block(h_long, x), h_long)
    return dict(
        num_rois=x.shape[0],
        feature_shape=list(x.shape[1:]),
        fixed_point=dict(steps=args.fp_steps, rel_residual=trace_summary(fp),
                         final=summarize(fp[-1])),
        broyden=dict(steps=args.broyden_steps, rel_residual=trace_summary(bt),
                     final=summarize(bt[-1])),
        spectral_radius_at_deq=summarize(rho_deq),
        spectral_radius_at_long_iteration=summarize(rho_long),
        spectral_radius_per_roi=rho_deq.tolist(),
        deq_vs_unrolled=dict(
            note=f'H* of the inference solve vs {args.fp_steps} fixed-point steps',
            abs_l2=summarize(diff),
            rel_l2=summarize(rel_diff),
            mean_abs_per_element=summarize(per_elem),
            e_minus_8=E_MINUS_8,
            fraction_rel_below_e_minus_8=(rel_diff < E_MINUS_8).double().mean().item(),
            deq_rel_residual=summarize(res_deq),
            unrolled_rel_residual=summarize(res_long)),
        _traces=dict(fixed_point=fp, broyden=bt, rho=rho_deq))


# ------------------------------------------------------------------ model I/O


def mask_refiner(model: nn.Module):
    refiners = {k: r for k, r in find_refiners(model).items() if 'mask_head' in k}
    if not refiners:
        refiners = find_refiners(model)
    if not refiners:
        raise ValueError('the model has no IFRRefiner')
    name = sorted(refiners)[0]
    return name, refiners[name]


# ---------------------------------------------------------------------- plot


def plot(report: Dict, traces: Dict[str, Tensor], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    ax = axes[0]
    for key, color in (('fixed_point', 'tab:blue'), ('broyden', 'tab:orange')):
        tr = traces[key].double()
        steps = torch.arange(1, tr.shape[0] + 1)
        q = torch.nanquantile(tr, torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64), dim=1)
        label = 'fixed-point iteration' if key == 'fixed_point' else 'Broyden'
        ax.plot(steps, q[1], color=color, label=f'{label} (median)')
        ax.fill_between(steps, q[0], q[2], color=color, alpha=0.2, label=f'{label} (10-90%)')
    ax.axhline(1e-3, color='gray', ls='--', lw=1, label='tol 1e-3 (paper)')
    ax.set_yscale('log')
    ax.set_xscale('log')
    ax.set_xlabel('evaluations of F')
    ax.set_ylabel('||F(h) - h|| / ||F(h)||')
    ax.set_title(f"Residual on {report['analysis']['num_rois']} real RoIs")
    ax.legend(fontsize=8)
    ax.grid(True, which='both', alpha=0.3)
    ax = axes[1]
    rho = traces['rho'].double().numpy()
    ax.hist(rho, bins=min(30, max(5, len(rho) // 2)), color='tab:green', alpha=0.8)
    ax.axvline(1.0, color='red', ls='--', lw=1, label='rho = 1')
    ax.set_xlabel('spectral radius of dF/dh at H*')
    ax.set_ylabel('RoIs')
    stats = report['analysis']['spectral_radius_at_deq']
    ax.set_title(f"Spectral radius: median {stats.get('median', float('nan')):.3f}, "
                 f"max {stats.get('max', float('nan')):.3f}")
    ax.legend(fontsize=8)
    fig.suptitle(osp.basename(report['config']) + ' / ' + str(report['checkpoint']), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> Dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    quiet_mmengine()
    checkpoint = None if args.checkpoint.lower() == 'none' else args.checkpoint
    model, cfg = build_detector(args.config, None if checkpoint else NO_PRETRAINED_BACKBONE,
                                checkpoint)
    name, refiner = mask_refiner(model)
    if refiner.mode == 'explicit':
        raise ValueError('the refiner is explicit (no shared block, no fixed point)')
    x_roi, infos = gt_roi_features(model, build_loader(cfg, args.num_images), args.max_rois)
    with torch.no_grad():
        x = refiner.inject(x_roi) if refiner.inject is not None else x_roi
        refiner.pop_stats()
        h_deq = refiner(x_roi)  # the inference solve, as the model runs it
        stats = refiner.pop_stats()
    block = refiner.block
    log(f'[convergence] {x.shape[0]} RoIs from {args.num_images} images; refiner {name} '
        f'({refiner.effective_mode}, test overrides {refiner.test_overrides})')
    analysis = analyze_block(block, x, h_deq, args)
    traces = analysis.pop('_traces')
    if stats:
        analysis['inference_solve'] = stats[-1].summary()
    report = dict(
        config=args.config,
        checkpoint=checkpoint,
        refiner=name,
        solver=refiner.deq.options,
        test_overrides=refiner.test_overrides,
        images=args.num_images,
        rois=infos,
        analysis=analysis)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'convergence.json'), 'w') as f:
        json.dump(report, f, indent=2, default=str)
    plot(report, traces, osp.join(args.out_dir, 'convergence.png'))
    a = analysis
    print(json.dumps(dict(
        fixed_point_final_rel_residual=a['fixed_point']['final'],
        broyden_final_rel_residual=a['broyden']['final'],
        spectral_radius=a['spectral_radius_at_deq'],
        deq_vs_unrolled_rel=a['deq_vs_unrolled']['rel_l2']), indent=1))
    log(f'[convergence] wrote {args.out_dir}/convergence.json and convergence.png')
    return report


if __name__ == '__main__':
    main()
