"""``tools.lib.benchmark.ifr_cost_head``: the head rows, their problem and the memory worker.

The whole section with its memory subprocesses runs in
``tests/test_tools/test_analysis_tools.py`` (slow); here each piece runs in
this process on a tiny head.
"""
import json
import sys
from argparse import Namespace

import pytest
import torch

from tools.lib.benchmark import ifr_cost_head as head_mod
from tools.lib.benchmark.ifr_cost_head import (HEAD_ROWS, INFER_ROWS, RESULT_PREFIX,
                                               HeadProblem, forward_args, head_memory_worker,
                                               measure_head_memory, row_refiner_cfg, run_head)
from tools.lib.benchmark.solves import PAPER_SOLVER, refiner_defaults


def _args(**kwargs):
    args = dict(threads=torch.get_num_threads(), seed=0, num_rois=5, train_rois=4, channels=8,
                roi_size=4, num_classes=3, head_config=None, head_checkpoint=None,
                head_images=8, head_rows=None, no_memory=True, repeats=1, memory_worker=None)
    args.update(kwargs)
    return Namespace(**args)


def test_rows_refiner_configs():
    solver, test_solver = refiner_defaults()
    assert row_refiner_cfg(HEAD_ROWS['default']) == dict(
        type='IFRRefiner', solver=solver, test_solver=test_solver)
    # The rows at the stock cost give their refiner whole.
    assert row_refiner_cfg(HEAD_ROWS['budget2']) == dict(
        budget=2, fp_correction=dict(gamma=0.8), with_cp=False)
    assert row_refiner_cfg(HEAD_ROWS['budget2_cp']) == dict(
        budget=2, fp_correction=dict(gamma=0.8), with_cp=True)
    assert row_refiner_cfg(HEAD_ROWS['budget2_infer3'])['test_solver'] == dict(
        solver='unroll', max_iter=3)
    # No test_solver: the training solve at inference too.
    assert row_refiner_cfg(HEAD_ROWS['paper'])['test_solver'] == {}
    assert row_refiner_cfg(HEAD_ROWS['paper'])['solver'] == PAPER_SOLVER
    for key, test_solver in INFER_ROWS.items():
        assert HEAD_ROWS[key]['infer_only']
        assert row_refiner_cfg(HEAD_ROWS[key])['test_solver'] == test_solver
    assert HEAD_ROWS['released']['solver']['solver'] == 'broyden_v0'
    assert HEAD_ROWS['released']['solver']['backward_solver'] == 'broyden_v0'


def test_problem_is_the_same_in_every_process():
    args = _args()
    a, b = HeadProblem(args), HeadProblem(args)
    assert a.infer_x().shape == (5, 8, 4, 4) and a.train_x().shape == (4, 8, 4, 4)
    assert a.targets.shape == (4, 8, 8) and a.labels.shape == (4, )
    assert set(a.targets.unique().tolist()) <= {0.0, 1.0}
    assert int(a.labels.max()) < 3
    for name in ('feats', 'targets', 'labels'):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.equal(a.feats, HeadProblem(_args(seed=1)).feats)
    # Same weights for the same row, whichever process builds it.
    wa, wb = a.head(HEAD_ROWS['paper']).state_dict(), b.head(HEAD_ROWS['paper']).state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_forward_args_skip_unset_values():
    cmd = forward_args(_args(head_images=None), {'--memory-worker': 'paper'})
    assert cmd[:4] == ['--threads', str(torch.get_num_threads()), '--seed', '0']
    assert '--num-rois' in cmd and '--roi-size' in cmd and '--head-config' not in cmd
    assert '--head-images' not in cmd
    assert cmd[-2:] == ['--memory-worker', 'paper']


def test_memory_worker_prints_its_result_line(capsys, no_leaked_v0_solver):
    head_memory_worker(_args(memory_worker='released'))
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(RESULT_PREFIX)]
    assert len(lines) == 1
    result = json.loads(lines[0][len(RESULT_PREFIX):])
    assert set(result) == {'peak_rss_increase'}
    assert isinstance(result['peak_rss_increase'], int)


def test_measure_head_memory_runs_the_worker_command(tmp_path):
    # A stand-in worker: checks it got the row and the allocator setting,
    # and answers among other output.
    script = tmp_path / 'worker.py'
    script.write_text(
        'import json, os, sys\n'
        'print("some log line")\n'
        'ok = sys.argv[-2:] == ["--memory-worker", "mem5"] and "--channels" in sys.argv\n'
        f'print({RESULT_PREFIX!r} + json.dumps(dict(peak_rss_increase='
        'int(os.environ["MALLOC_MMAP_THRESHOLD_"]) if ok else -1)))\n')
    assert measure_head_memory(_args(), 'mem5', [sys.executable, str(script)]) == 131072


def test_run_head_without_memory(no_leaked_v0_solver):
    # The worker command must not be used with no_memory.
    out = run_head(_args(head_rows=['paper', 'released', 'tol3e-2_fz']), worker=['false'])
    rows = out['rows']
    assert list(rows) == ['stock', 'paper', 'released', 'tol3e-2_fz']
    assert out['roi_shape'] == [8, 4, 4] and out['inputs'] == 'random'
    assert rows['stock']['infer_ratio'] == rows['stock']['train_ratio'] == 1.0
    assert 'refiner' not in rows['stock'] and 'train_peak_mib' not in rows['paper']
    assert 'train_s' not in rows['tol3e-2_fz'] and 'train_steps' not in rows['tol3e-2_fz']
    for key in ('paper', 'released'):
        assert rows[key]['infer_ratio'] == pytest.approx(
            rows[key]['infer_s'] / rows['stock']['infer_s'])
        assert rows[key]['train_steps']['bwd_steps'] >= 1
    # The same solve by the released code takes the same steps.
    assert rows['paper']['infer_steps']['fwd_steps'] == rows['released']['infer_steps'][
        'fwd_steps']
    assert rows['tol3e-2_fz']['infer_steps']['fwd_steps'] <= rows['paper']['infer_steps'][
        'fwd_steps']


def test_run_head_rejects_unknown_rows():
    with pytest.raises(ValueError, match="unknown \\['nope'\\]"):
        run_head(_args(head_rows=['paper', 'nope']), worker=['false'])


def test_memory_is_measured_per_training_row(monkeypatch, no_leaked_v0_solver):
    calls = []
    monkeypatch.setattr(head_mod, 'measure_head_memory',
                        lambda args, key, worker: calls.append((key, worker)) or 2 << 20)
    out = run_head(_args(no_memory=False, head_rows=['paper', 'it5']), worker=['w'])
    assert calls == [('stock', ['w']), ('paper', ['w'])]  # not the inference-only row
    assert out['rows']['paper']['train_peak_mib'] == 2.0
    assert out['rows']['paper']['train_peak_ratio'] == 1.0


def test_no_memory_ratio_against_a_zero_stock_peak(monkeypatch, no_leaked_v0_solver):
    # A tiny stock step may not move the peak RSS by a page; the IFR row then
    # keeps its peak but gets no ratio.
    monkeypatch.setattr(head_mod, 'measure_head_memory',
                        lambda args, key, worker: 0 if key == 'stock' else 2 << 20)
    rows = run_head(_args(no_memory=False, head_rows=['paper']), worker=['w'])['rows']
    assert rows['stock']['train_peak_mib'] == 0 and rows['paper']['train_peak_mib'] == 2.0
    assert 'train_peak_ratio' not in rows['paper']
    assert rows['paper']['train_ratio'] > 0
