"""``tools.lib.benchmark.deq_op`` and ``tools/analysis_tools/benchmark_deq.py`` on a tiny
problem: the counters, the sides' agreement, the table and the memory worker."""
import json
from argparse import Namespace

import pytest
import torch
from tool_runs import load_tool

from tools.lib.benchmark.deq_op import CountedBlock, build_problem, markdown, run_benchmark

pytest.importorskip('torchdeq')

TINY = dict(num_rois=3, channels=8, size=4, threads=1, max_iter=15, tol=1e-3, seed=0, repeats=1)


def test_counted_block_counts_calls_rows_graphs_and_vjps():
    block, x, _ = build_problem(Namespace(**TINY))
    counted = CountedBlock(block)
    with torch.no_grad():
        counted(torch.zeros_like(x), x)
    out = counted(torch.zeros_like(x[:2]), x[:2])
    out.sum().backward()
    assert counted.snapshot() == dict(calls=2, rows=5, graph_calls=1, vjps=1)
    counted.reset()
    assert counted.snapshot() == dict(calls=0, rows=0, graph_calls=0, vjps=0)


def test_both_sides_solve_the_same_fixed_point_and_agree_on_the_gradients():
    seen = []

    def fake_memory(args, name):
        seen.append(name)
        return dict(peak_rss_increase=0, saved_for_backward=0)

    report = run_benchmark(Namespace(**TINY), fake_memory)
    assert seen == ['mmifr', 'torchdeq', 'tower']
    mmifr, torchdeq = report['results']['mmifr'], report['results']['torchdeq']
    for side in (mmifr, torchdeq):
        assert side['output_rel_residual_max'] < 1e-2
        assert side['forward_work']['calls'] > 1 and side['backward_work']['vjps'] > 0
        assert len(side['time']['forward']['runs']) == 1
    assert report['output_agreement']['cosine'] > 0.999
    assert report['grad_agreement']['all_params']['cosine'] > 0.99
    table = markdown(report)
    assert '| F calls, forward (incl. graph-building) |' in table
    assert '| all_params |' in table


def test_the_memory_worker_reports_one_side(capsys):
    tool = load_tool('tools/analysis_tools/benchmark_deq.py')
    argv = ['--memory-worker', 'mmifr']
    for key, value in TINY.items():
        if key != 'repeats':
            argv += [f"--{key.replace('_', '-')}", str(value)]
    tool.main(argv)
    (line, ) = [ln for ln in capsys.readouterr().out.splitlines()
                if ln.startswith(tool.RESULT_PREFIX)]
    result = json.loads(line[len(tool.RESULT_PREFIX):])
    assert result['saved_for_backward'] > 0 and result['peak_rss_increase'] >= 0
