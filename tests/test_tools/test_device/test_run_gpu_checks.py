"""tools/device/run_gpu_checks.py: the GPU machine's one command, rehearsed on the CPU.

The fast tests check the driver's rules (first failure stops the run and is named, the budget
stops a subprocess, the benchmark yields to the budget, checksums, JUnit counts, skips on the
GPU fail); the slow one runs the whole ``--cpu-dry-run`` as the documented command does.
"""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest


@pytest.fixture(scope='module')
def checks(device_tool):
    return device_tool('run_gpu_checks')


def _args(checks, tmp_path, *extra):
    return checks.parse_args([str(tmp_path / 'out'), '--work', str(tmp_path / 'work'),
                              '--cpu-dry-run', *extra])


def test_first_failing_stage_stops_the_run_and_is_named(checks, tmp_path, monkeypatch):
    ran = []

    def ok(run):
        ran.append('one')
        return dict(value=1)

    def fails(run):
        ran.append('two')
        raise checks.StageError('the build exited with 1; last lines:\nerror: nvcc died')

    def never(run):
        ran.append('three')

    monkeypatch.setattr(checks, 'STAGES', (('one', ok), ('two', fails), ('three', never)))
    rc = checks.main([str(tmp_path / 'out'), '--work', str(tmp_path / 'work'), '--cpu-dry-run'])
    assert rc == 1 and ran == ['one', 'two']
    summary = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    assert summary['result'] == 'failed at two' and summary['failed_stage'] == 'two'
    assert [(s['name'], s['status']) for s in summary['stages']] == [('one', 'ok'),
                                                                     ('two', 'failed')]
    assert summary['stages'][0]['details'] == dict(value=1)
    md = (tmp_path / 'out' / 'summary.md').read_text()
    assert md.startswith('# GPU checks (cpu-dry-run): failed at two')
    assert '## two failed' in md and 'error: nvcc died' in md
    assert 'the build exited with 1' in (tmp_path / 'out' / 'run.log').read_text()


def test_a_subprocess_is_stopped_when_the_budget_runs_out(checks, tmp_path):
    run = checks.Run(_args(checks, tmp_path, '--budget-s', '3'))
    with pytest.raises(checks.StageError, match=r'sleeping was stopped after \d s: the budget'):
        run.sh([sys.executable, '-c', 'import time; time.sleep(60)'], what='sleeping',
               reserve_s=0)
    assert run.elapsed() < 10
    with pytest.raises(checks.StageError, match='no time left in the 3 s budget for more'):
        run.sh([sys.executable, '-c', 'pass'], what='more', reserve_s=5)


def test_a_failing_subprocess_reports_its_last_lines(checks, tmp_path):
    run = checks.Run(_args(checks, tmp_path))
    code = 'import sys; print("step 1"); print("boom", file=sys.stderr); sys.exit(3)'
    with pytest.raises(checks.StageError, match=r'(?s)the step exited with 3.*step 1\nboom'):
        run.sh([sys.executable, '-c', code], what='the step')


def test_the_benchmark_yields_to_the_budget(checks, tmp_path):
    run = checks.Run(_args(checks, tmp_path, '--budget-s', '100', '--benchmark-min-s', '150'))
    assert run.stage('benchmark', lambda: checks.stage_benchmark(run))
    record = run.summary['stages'][-1]
    assert record['status'] == 'skipped'
    assert re.match(r'\d+ s left of the budget, the benchmark needs 150 s', record['note'])


def test_checksums_catch_a_changed_or_missing_wheel(checks, device_tool, tmp_path):
    fetch = device_tool('fetch_gpu_wheels')
    (tmp_path / 'a-1.0-py3-none-any.whl').write_bytes(b'one')
    (tmp_path / 'b-1.0-py3-none-any.whl').write_bytes(b'two')
    fetch.write_checksums(str(tmp_path))
    assert checks._verify_checksums(str(tmp_path)) == 2
    (tmp_path / 'a-1.0-py3-none-any.whl').write_bytes(b'changed')
    os.remove(tmp_path / 'b-1.0-py3-none-any.whl')
    with pytest.raises(checks.StageError, match='a-1.0-py3-none-any.whl differs from its '
                       'checksum; b-1.0-py3-none-any.whl is missing'):
        checks._verify_checksums(str(tmp_path))
    with pytest.raises(checks.StageError, match='SHA256SUMS is missing: fill'):
        checks._verify_checksums(str(tmp_path / 'elsewhere'))


JUNIT = ('<testsuites><testsuite name="pytest" tests="{tests}" failures="0" errors="0" '
         'skipped="{skipped}"></testsuite></testsuites>')


@pytest.mark.parametrize('dry_run, tests, skipped, error', [
    (False, 10, 0, None),
    (False, 10, 2, '2 CUDA tests skipped on the GPU'),
    (True, 10, 10, None),
    (True, 10, 9, 'without a GPU every CUDA test must skip'),
    (True, 0, 0, 'no test is marked cuda'),
])
def test_cuda_test_counts(checks, tmp_path, monkeypatch, dry_run, tests, skipped, error):
    args = _args(checks, tmp_path)
    args.cpu_dry_run = dry_run
    run = checks.Run(args)
    seen = {}

    def fake_sh(cmd, *, what, env=None, **kwargs):
        seen['env'] = env
        (tmp_path / 'out' / 'cuda_tests.xml').write_text(
            JUNIT.format(tests=tests, skipped=skipped))
        return ''

    monkeypatch.setattr(run, 'sh', fake_sh)
    if error:
        with pytest.raises(checks.StageError, match=error):
            checks.stage_cuda_tests(run)
    else:
        assert checks.stage_cuda_tests(run)['tests'] == tests
    # On the GPU a test that would skip for want of CUDA fails instead.
    assert seen['env'].get('MMIFR_REQUIRE_CUDA') == (None if dry_run else '1')


def test_only_files_marking_cuda_tests_are_collected(checks):
    files = checks.cuda_test_files()
    assert 'tests/test_ops/test_deq_cuda.py' in files
    assert 'tests/test_configs/test_configs_cuda.py' in files
    assert 'tests/test_ops/test_deq.py' not in files
    # Every file named *_cuda.py marks its tests.
    named = checks.glob.glob(osp.join(checks.REPO, 'tests', '**', 'test_*_cuda.py'),
                             recursive=True)
    assert {osp.relpath(p, checks.REPO) for p in named} <= set(files)


def test_arguments_are_checked(checks, tmp_path, capsys):
    with pytest.raises(SystemExit):
        checks.parse_args([str(tmp_path), '--rehearse-tests'])
    assert '--rehearse-tests belongs to --cpu-dry-run' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        checks.parse_args([str(tmp_path), '--wheels', str(tmp_path / 'none')])
    assert f'--wheels {tmp_path / "none"} does not exist' in capsys.readouterr().err


@pytest.mark.slow
def test_cpu_dry_run_passes_every_stage(checks, tmp_path):
    """The documented rehearsal: every stage runs (the build skipped), the CUDA tests skip, the
    benchmark measures the GPU rows on the CPU, and what comes back fits the device tool."""
    out = tmp_path / 'out'
    proc = subprocess.run(
        [sys.executable, osp.join(checks.DEVICE_TOOLS, 'run_gpu_checks.py'), str(out), '--work',
         str(tmp_path / 'work'), '--cpu-dry-run'],
        cwd=checks.REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['result'] == 'ok' and summary['mode'] == 'cpu-dry-run'
    stages = {s['name']: s for s in summary['stages']}
    assert list(stages) == [name for name, _ in checks.STAGES]
    assert all(s['status'] == 'ok' for s in stages.values())
    tests = stages['cuda_tests']['details']
    assert tests['tests'] == tests['skipped'] >= 30
    ops = stages['mmcv_ops']['details']['ops']
    assert ops['nms'] == ops['roi_align'] == ops['deform_conv'] == 'ok'
    rows = {r['row']: r for r in stages['benchmark']['details']['rows']}
    assert set(rows) == {'stock', 'ifr', 'ifr, test_solver=unroll K=2'}
    assert rows['ifr, test_solver=unroll K=2']['fwd_steps'] == 2.0
    syncs = stages['benchmark']['details']['syncs']
    assert syncs['unroll K=2']['op_calls'] == 0
    # What the device tool brings back: at most 8 files of plain names.
    files = os.listdir(out)
    assert len(files) <= 8 and all(re.fullmatch(r'[\w.-]+', f) for f in files)
    assert {'summary.json', 'summary.md', 'run.log', 'cuda_tests.xml', 'ifr_cost_gpu.json',
            'ifr_cost_gpu.md'} <= set(files)
