"""Benchmark mmifr's DEQ op against torchdeq on the IFR-shaped problem.

Both sides solve the same fixed point ``h* = F(h*, x)`` of the same
:class:`~mmifr.models.layers.DoubleResidualBlock` (bounded form, 3x3 convs
with weight norm, GroupNorm with 4 groups) on ``N`` RoIs of ``256x14x14``,
with Broyden forward and backward, 15 iterations each, relative tolerance
1e-3 and exact implicit (IFT) gradients. mmdet's 4-conv mask tower is timed
as a scale reference.

What is measured, and how:

* **time**: wall clock of the training forward (graph-building call) and of
  forward + ``loss.backward()``, median and min over ``--repeats`` runs after
  one warm-up run. The sides alternate within each repeat so that load
  changes on a shared machine hit both alike.
* **F work**: calls of ``F`` and the samples they covered ("rows": mmifr
  drops converged samples, torchdeq stops a batch only when all samples are
  done), ``F`` calls that built a graph, and vector-Jacobian products through
  ``F`` (counted with a tensor hook on ``F``'s output).
* **residual**: ``||F(h) - h|| / ||F(h)||`` per sample of the tensor each side
  returns, recomputed here; and the adjoint residual each side reports.
* **memory**: each side runs one forward + backward in a fresh subprocess;
  reported are the peak RSS increase over the RSS after setup (everything the
  process touched: solver history, autograd graph, temporaries, allocator
  slack), and the bytes autograd saved for backward during the forward
  (``saved_tensors_hooks``: the activation memory held until backward).
* **gradient agreement**: cosine similarity and relative difference of the
  ``x`` and parameter gradients of a random linear loss between the sides.

Example:
    python tools/analysis_tools/benchmark_deq.py --num-rois 16 --repeats 2
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Dict

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from tools.lib.benchmark.deq_op import (SIDES, build_problem, build_side,  # noqa: E402
                                        markdown, run_benchmark, saved_tensor_bytes)
from tools.lib.memory import current_rss, peak_rss  # noqa: E402
from tools.lib.progress import log, quiet_mmengine  # noqa: E402

RESULT_PREFIX = 'BENCHMARK_RESULT '


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark the mmifr DEQ op against torchdeq')
    parser.add_argument('--num-rois', type=int, default=64, help='RoIs per batch (N)')
    parser.add_argument('--channels', type=int, default=256)
    parser.add_argument('--size', type=int, default=14, help='RoI feature side')
    parser.add_argument('--repeats', type=int, default=3, help='timed runs per side')
    parser.add_argument(
        '--threads',
        type=int,
        default=1,
        help='intra-op threads (1 by default: steadier numbers on a shared CPU)')
    parser.add_argument('--max-iter', type=int, default=15, help='forward and backward limit')
    parser.add_argument('--tol', type=float, default=1e-3, help='relative tolerance')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--out',
        default=None,
        help='JSON output (default: work_dirs/benchmarks/deq_benchmark_n{N}.json)')
    # Internal: one memory measurement in a fresh process.
    parser.add_argument('--memory-worker', choices=(*SIDES, 'tower'), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def memory_worker(args) -> None:
    """One forward + backward of one side in this (fresh) process."""
    torch.set_num_threads(args.threads)
    block, x, probe = build_problem(args)
    side = build_side(args.memory_worker, block, args)
    baseline = current_rss()
    h, saved = saved_tensor_bytes(lambda: side.forward(x))
    (h * probe).mean().backward()
    result = dict(peak_rss_increase=peak_rss() - baseline, saved_for_backward=saved)
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def measure_memory(args, name: str) -> Dict[str, int]:
    cmd = [sys.executable, osp.abspath(__file__), '--memory-worker', name]
    for key in ('num_rois', 'channels', 'size', 'threads', 'max_iter', 'tol', 'seed'):
        cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    log(f'[memory] {name}: fresh process')
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
    line = next(line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX))
    return json.loads(line[len(RESULT_PREFIX):])


def main(argv=None) -> None:
    args = parse_args(argv)
    quiet_mmengine()
    if args.memory_worker:
        memory_worker(args)
        return
    out = args.out or osp.join('work_dirs', 'benchmarks', f'deq_benchmark_n{args.num_rois}.json')
    report = run_benchmark(args, measure_memory)
    table = markdown(report)
    report['markdown'] = table
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(report, f, indent=2)
    print(table)
    log(f'written {out}')


if __name__ == '__main__':
    main()
