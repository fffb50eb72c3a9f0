"""The GPU machine's one command: build the stack there, run the CUDA paths, measure the cost.

Run on the GPU machine from the repository root, with ``.gpu_wheels/`` carried
(``tools/device/fetch_gpu_wheels.py`` fills it here; docs/gpu.md)::

    python3 tools/device/run_gpu_checks.py $OUT

Stages, each timed, stopping at the first that fails:

``env``        python, torch, the GPU, nvcc and ``CUDA_HOME``;
``wheels``     the carried wheels (checksums checked) installed into a target
               folder put on ``PYTHONPATH`` (the machine's torch stays the one
               used), then every module the stack imports, imported;
``mmcv``       mmcv 2.1.0 built from its sdist with CUDA for this GPU's
               architecture only, without the kernels nothing here uses
               (``prune_mmcv_ops.py``; ``--full-mmcv`` builds all), and
               installed; a wheel built earlier (carried in ``.gpu_wheels/`` or
               left by a previous run in ``--work``) is installed instead;
``mmcv_ops``   each kept op called once on the GPU against the CPU
               (``mmcv_ops_smoke.py``);
``mmifr``      mmifr installed from the checkout and imported from outside it;
``cuda_tests`` ``pytest -m cuda`` over the files that mark tests so: with
               ``MMIFR_REQUIRE_CUDA=1`` a test that would skip fails, and any
               skip fails the stage;
``benchmark``  the GPU cost benchmark (``benchmark_ifr_cost.py --device cuda``),
               skipped when less than ``--benchmark-min-s`` of the budget is left.

Everything lands in ``OUT_DIR`` (at most 8 files, what the device tool brings
back): ``summary.json`` / ``summary.md`` (rewritten after every stage, so a
run killed at its limit still says how far it got), ``run.log`` (every stage's
output), ``mmcv_build.log``, ``cuda_tests.xml`` (JUnit), ``ifr_cost_gpu.json``
/ ``.md`` and the built mmcv wheel (if under 15 MiB: carry it back in
``.gpu_wheels/`` and the next run skips the build). Every subprocess gets the
time left of ``--budget-s`` as its limit.

``--cpu-dry-run`` rehearses the same script where there is no GPU, in the
environment it is started from (the project's ``.venv``): nothing is installed
or compiled (the mmcv sdist is unpacked and pruned, if fetched), the smoke
runs on the CPU, the CUDA tests are collected and skip (``--rehearse-tests``:
they run on the CPU instead, ``MMIFR_CUDA_TESTS_ON=cpu``), and the benchmark
runs on the CPU at a tiny size::

    .venv/bin/python tools/device/run_gpu_checks.py work_dirs/gpu_dry_run --cpu-dry-run

Standard library only (it installs everything else).
"""
import argparse
import glob
import hashlib
import json
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import xml.etree.ElementTree as ET
import zipfile
from collections import deque
from datetime import datetime, timezone
from typing import Callable, Dict, List, Optional

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import gpu_stack  # noqa: E402

REPO = gpu_stack.REPO_ROOT
DEVICE_TOOLS = osp.join(REPO, 'tools', 'device')
#: The wheel the device tool can bring back (its limit is 16 MiB a file).
MAX_RETURNED_WHEEL_MIB = 15
#: The benchmark's output stem in OUT_DIR.
BENCHMARK_NAME = 'ifr_cost_gpu'
#: R-50 Mask R-CNN at 800x1333, 100 detections per image, training batch 2:
#: stock head, IFR's default solve, and K plain block evaluations (K = 2, 3).
GPU_BENCHMARK = [
    '--sections', 'e2e', 'syncs', '--device', 'cuda', '--e2e-models', 'r50', '--e2e-data',
    'shapes', '--e2e-images', '4', '--e2e-dets', '100', '--e2e-train-batch', '2', '--repeats',
    '5', '--e2e-test-solvers',
    json.dumps({'unroll K=2': dict(solver='unroll', max_iter=2),
                'unroll K=3': dict(solver='unroll', max_iter=3)})
]
#: The same rows on the CPU at a size that takes seconds (the dry run).
DRY_RUN_BENCHMARK = [
    '--sections', 'e2e', 'syncs', '--device', 'cpu', '--e2e-models', 'r50', '--e2e-data',
    'shapes', '--e2e-size', '160x128', '--e2e-images', '1', '--e2e-dets', '10',
    '--e2e-train-batch', '1', '--repeats', '1', '--sync-rois', '8', '--e2e-test-solvers',
    json.dumps({'unroll K=2': dict(solver='unroll', max_iter=2)})
]


class StageError(RuntimeError):
    """A stage failed; the message says what and where to look."""


class Skip(Exception):
    """A stage did not run; the message says why."""


class Run:
    """One run: the budget, the log, the subprocesses and the summary.

    Args:
        args: The command line (:func:`parse_args`).
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = osp.abspath(args.out_dir)
        self.work = osp.abspath(args.work)
        self.site = osp.join(self.work, 'site')
        self.start = time.monotonic()
        os.makedirs(self.out, exist_ok=True)
        os.makedirs(self.work, exist_ok=True)
        self.log_file = open(osp.join(self.out, 'run.log'), 'a', buffering=1)
        self.env = dict(os.environ, PYTHONUNBUFFERED='1', MPLBACKEND='Agg')
        if not args.cpu_dry_run:
            # The carried packages, ahead of the machine's own; torch stays the machine's.
            self.env['PYTHONPATH'] = os.pathsep.join(
                p for p in (self.site, self.env.get('PYTHONPATH')) if p)
        self.facts: Dict = {}
        self.summary = dict(
            mode='cpu-dry-run' if args.cpu_dry_run else 'gpu',
            started_utc=datetime.now(timezone.utc).isoformat(timespec='seconds'),
            budget_s=args.budget_s,
            argv=sys.argv[1:],
            result='running',
            stages=[])

    # ------------------------------------------------------------ utilities
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def remaining(self) -> float:
        return self.args.budget_s - self.elapsed()

    def say(self, msg: str) -> None:
        line = f'[gpu-checks {self.elapsed():5.0f}s] {msg}'
        print(line, flush=True)
        self.log_file.write(line + '\n')

    def python(self, *args: str) -> List[str]:
        return [sys.executable, *args]

    def sh(self,
           cmd: List[str],
           *,
           what: str,
           env: Optional[Dict] = None,
           cwd: str = REPO,
           log_path: Optional[str] = None,
           echo: Callable[[str], bool] = lambda line: True,
           reserve_s: float = 10.0) -> str:
        """Run ``cmd`` within the budget (less ``reserve_s``), its output logged.

        Every line goes to ``log_path`` (default ``run.log``); the lines
        ``echo`` accepts are printed too. Raises :class:`StageError` naming
        ``what`` on a non-zero exit or when the budget runs out.

        Returns:
            str: The last lines of the output.
        """
        limit = self.remaining() - reserve_s
        if limit <= 0:
            raise StageError(f'no time left in the {self.args.budget_s:.0f} s budget for {what}')
        shown = ['<code>' if i and cmd[i - 1] == '-c' else c for i, c in enumerate(cmd)]
        self.say(f'$ {" ".join(shown)}  (limit {limit:.0f} s)')
        tail: deque = deque(maxlen=40)
        sink = open(log_path, 'a', buffering=1) if log_path else self.log_file
        proc = subprocess.Popen(cmd, cwd=cwd, env=env or self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors='replace',
                                start_new_session=True)

        def pump():
            for line in proc.stdout:
                sink.write(line)
                tail.append(line.rstrip('\n'))
                if echo(line):
                    print(line, end='', flush=True)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            rc = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            reader.join(5)
            raise StageError(f'{what} was stopped after {limit:.0f} s: the budget '
                             f'(--budget-s {self.args.budget_s:.0f}) ran out') from None
        finally:
            reader.join(5)
            if log_path:
                sink.close()
        text = '\n'.join(tail)
        if rc != 0:
            where = osp.basename(log_path) if log_path else 'run.log'
            raise StageError(f'{what} exited with {rc} (see {where}); last lines:\n{text}')
        return text

    def probe(self, code: str, what: str, cwd: str = REPO, *args: str) -> Dict:
        """Run a Python snippet that prints a JSON line; return its last one."""
        out = self.sh(self.python('-c', code, *args), what=what, cwd=cwd,
                      echo=lambda line: False)
        return json.loads(next(line for line in reversed(out.splitlines())
                               if line.startswith('{')))

    # --------------------------------------------------------------- stages
    def stage(self, name: str, fn: Callable[[], Optional[Dict]]) -> bool:
        """Run one stage, record it, rewrite the summary. Returns whether it passed."""
        record = dict(name=name, status='running')
        self.summary['stages'].append(record)
        self.say(f'== {name}')
        t0 = time.monotonic()
        try:
            record['details'] = fn() or {}
            record['status'] = 'ok'
        except Skip as e:
            record.update(status='skipped', note=str(e))
        except StageError as e:
            record.update(status='failed', error=str(e))
        except Exception as e:  # noqa: BLE001  (a bug here must still leave a summary)
            record.update(status='failed', error=f'{type(e).__name__}: {e}')
        record['seconds'] = round(time.monotonic() - t0, 1)
        self.say(f'== {name}: {record["status"]} in {record["seconds"]:.0f} s' +
                 (f' ({record.get("note") or record.get("error").splitlines()[0]})'
                  if record['status'] != 'ok' else ''))
        self.write_summary()
        return record['status'] != 'failed'

    def write_summary(self) -> None:
        self.summary['elapsed_s'] = round(self.elapsed(), 1)
        with open(osp.join(self.out, 'summary.json'), 'w') as f:
            json.dump(self.summary, f, indent=1, default=str)
        with open(osp.join(self.out, 'summary.md'), 'w') as f:
            f.write(summary_markdown(self.summary))


# ------------------------------------------------------------------- stages
ENV_PROBE = '''
import json, os, platform, shutil, subprocess, sys, torch
from torch.utils import cpp_extension
cuda = torch.cuda.is_available()
nvcc = shutil.which('nvcc')
info = dict(
    python=platform.python_version(), executable=sys.executable, torch=torch.__version__,
    torch_file=torch.__file__, torch_cuda=torch.version.cuda, cuda_available=cuda,
    device=torch.cuda.get_device_name(0) if cuda else None,
    capability='.'.join(map(str, torch.cuda.get_device_capability(0))) if cuda else None,
    memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if cuda else None,
    cuda_home=cpp_extension.CUDA_HOME, nvcc=nvcc, ninja=cpp_extension.is_ninja_available(),
    nvcc_version=(subprocess.run([nvcc, '--version'], capture_output=True, text=True)
                  .stdout.strip().splitlines()[-1] if nvcc else None),
    cpus=os.cpu_count())
print(json.dumps(info))
'''


def stage_env(run: Run) -> Dict:
    info = run.probe(ENV_PROBE, 'the environment probe')
    run.facts.update(info)
    for key in ('python', 'torch', 'torch_cuda', 'device', 'capability', 'nvcc_version'):
        run.say(f'  {key}: {info[key]}')
    if not run.args.cpu_dry_run:
        if not info['cuda_available']:
            raise StageError(f'torch {info["torch"]} sees no CUDA GPU')
        if not info['cuda_home'] or not info['nvcc']:
            raise StageError('no CUDA toolkit (nvcc / CUDA_HOME) to build mmcv with')
        if not info['ninja']:
            raise StageError('no ninja: torch would compile mmcv one file at a time')
    return info


def _verify_checksums(folder: str) -> int:
    path = osp.join(folder, gpu_stack.CHECKSUMS)
    if not osp.exists(path):
        raise StageError(f'{path} is missing: fill {folder} with tools/device/fetch_gpu_wheels.py')
    bad = []
    with open(path) as f:
        entries = [line.split(None, 1) for line in f if line.strip()]
    for digest, name in entries:
        name = name.strip()
        file = osp.join(folder, name)
        if not osp.exists(file):
            bad.append(f'{name} is missing')
            continue
        with open(file, 'rb') as g:
            if hashlib.sha256(g.read()).hexdigest() != digest:
                bad.append(f'{name} differs from its checksum')
    if bad:
        raise StageError(f'{folder}: ' + '; '.join(bad))
    return len(entries)


IMPORT_PROBE = '''
import importlib, json, sys
out = {}
for name in sys.argv[1:]:
    module = importlib.import_module(name)
    out[name] = dict(version=getattr(module, '__version__', None), file=module.__file__)
print(json.dumps(out))
'''


def _import_check(run: Run, modules) -> Dict:
    return run.probe(IMPORT_PROBE, 'the import check', REPO, *modules)


def stage_wheels(run: Run) -> Dict:
    folder = osp.abspath(run.args.wheels)
    modules = list(gpu_stack.CARRIED_IMPORTS) + [
        m for m in gpu_stack.DEVICE_PROVIDES.values() if m is not None]
    if run.args.cpu_dry_run:
        found = _import_check(run, modules)
        return dict(note='dry run: nothing installed; imported from the current environment',
                    imports={k: v['version'] for k, v in found.items()})
    files = _verify_checksums(folder)
    wheels = sorted(w for w in glob.glob(osp.join(folder, '*.whl'))
                    if not osp.basename(w).startswith('mmcv-'))
    shutil.rmtree(run.site, ignore_errors=True)
    run.sh(run.python('-m', 'pip', 'install', '--no-index', '--no-deps', '--no-compile',
                      '--disable-pip-version-check', '-q', '--target', run.site, *wheels),
           what='installing the carried wheels')
    found = _import_check(run, modules)
    if found['torch']['file'].startswith(run.site):
        raise StageError(f'torch is imported from {run.site}: a carried wheel brought a torch')
    return dict(checksums=files, installed=[osp.basename(w) for w in wheels],
                imports={k: v['version'] for k, v in found.items()})


def _prebuilt_mmcv(run: Run) -> Optional[str]:
    py = 'cp' + ''.join(run.facts['python'].split('.')[:2])
    for folder in (run.args.wheels, osp.join(run.work, 'dist')):
        found = sorted(glob.glob(osp.join(folder, f'mmcv-2.1.0-{py}-{py}-linux_x86_64.whl')))
        if found:
            return found[-1]
    return None


def _unpack_mmcv(run: Run) -> str:
    sdists = glob.glob(osp.join(run.args.wheels, 'mmcv-*.tar.gz'))
    if len(sdists) != 1:
        raise StageError(f'expected one mmcv sdist in {run.args.wheels}, found {sdists}')
    target = osp.join(run.work, 'src')
    shutil.rmtree(target, ignore_errors=True)
    with tarfile.open(sdists[0]) as tar:
        tar.extractall(target)
    return osp.join(target, osp.basename(sdists[0])[:-len('.tar.gz')])


def _prune(run: Run, src: str) -> Dict:
    report = osp.join(run.work, 'prune.json')
    run.sh(run.python(osp.join(DEVICE_TOOLS, 'prune_mmcv_ops.py'), src, '--report', report),
           what='pruning mmcv')
    with open(report) as f:
        plan = json.load(f)
    return dict(kept_cu=len(plan['kept_cu']), removed_cu=len(plan['removed_cu']))


def stage_mmcv(run: Run) -> Dict:
    if run.args.cpu_dry_run:
        details = dict(note='dry run: no build; the installed mmcv is used')
        if glob.glob(osp.join(run.args.wheels, 'mmcv-*.tar.gz')):
            details['prune_rehearsal'] = _prune(run, _unpack_mmcv(run))
        return details
    # (A wheel built earlier may be a pruned one: --full-mmcv builds afresh.)
    prebuilt = None if run.args.rebuild_mmcv or run.args.full_mmcv else _prebuilt_mmcv(run)
    details: Dict = {}
    if prebuilt:
        run.say(f'  using the mmcv wheel built earlier: {prebuilt}')
        wheel = prebuilt
        details['source'] = f'prebuilt {osp.basename(prebuilt)}'
    else:
        src = _unpack_mmcv(run)
        details['pruned'] = None if run.args.full_mmcv else _prune(run, src)
        arch = run.args.arch or run.facts['capability']
        cuda_home = run.facts['cuda_home']
        cccl = osp.join(cuda_home, 'include', 'cccl')
        env = dict(
            run.env, FORCE_CUDA='1', MMCV_WITH_OPS='1', TORCH_CUDA_ARCH_LIST=arch,
            MAX_JOBS=str(run.args.jobs or run.facts['cpus']), CUDA_HOME=cuda_home)
        if osp.isdir(cccl):
            # CUDA 13 moved <nv/target> and friends under include/cccl.
            env['CPATH'] = os.pathsep.join(p for p in (cccl, env.get('CPATH')) if p)
        dist = osp.join(run.work, 'dist')
        shutil.rmtree(dist, ignore_errors=True)
        last = [0.0]

        def progress(line: str) -> bool:
            # ninja's "[n/N] ..." lines, at most one every 15 s.
            line = line.lstrip()
            if line.startswith('[') and '/' in line.split(']')[0] and \
                    time.monotonic() - last[0] > 15:
                last[0] = time.monotonic()
                return True
            return False

        t0 = time.monotonic()
        # --no-build-isolation: with isolation pip builds in a fresh environment
        # without torch, and mmcv's setup.py then silently skips the ops.
        run.sh(run.python('-m', 'pip', 'wheel', '--no-build-isolation', '--no-deps',
                          '--no-index', '--disable-pip-version-check', '-v', '-w', dist, src),
               what='the mmcv build', env=env, cwd=run.work,
               log_path=osp.join(run.out, 'mmcv_build.log'), echo=progress, reserve_s=30)
        details.update(build_s=round(time.monotonic() - t0, 1), arch=arch)
        wheels = glob.glob(osp.join(dist, 'mmcv-*.whl'))
        if len(wheels) != 1:
            raise StageError(f'the build left {wheels} in {dist}')
        wheel = wheels[0]
        details['wheel'] = osp.basename(wheel)
    with zipfile.ZipFile(wheel) as whl:
        if not any(n.startswith('mmcv/_ext') and n.endswith('.so') for n in whl.namelist()):
            raise StageError(f'{osp.basename(wheel)} has no compiled ops (mmcv/_ext*.so)')
    run.sh(run.python('-m', 'pip', 'install', '--no-index', '--no-deps', '--no-compile', '-q',
                      '--disable-pip-version-check', '--target', run.site, wheel),
           what='installing mmcv')
    size = osp.getsize(wheel) / 2**20
    details['wheel_mib'] = round(size, 1)
    if not prebuilt and size <= MAX_RETURNED_WHEEL_MIB:
        shutil.copy2(wheel, run.out)
        details['returned'] = f'{osp.basename(wheel)} in OUT_DIR: carry it in ' \
            f'{gpu_stack.WHEEL_DIR}/ and the next run skips the build'
    return details


def stage_mmcv_ops(run: Run) -> Dict:
    report = osp.join(run.work, 'mmcv_ops.json')
    device = 'cpu' if run.args.cpu_dry_run else 'cuda'
    try:
        run.sh(run.python(osp.join(DEVICE_TOOLS, 'mmcv_ops_smoke.py'), '--device', device,
                          '--json', report), what='the mmcv op smoke test', cwd=run.work)
    finally:
        results = json.load(open(report)) if osp.exists(report) else None
        run.facts['mmcv_ops'] = results
    return dict(device=device, ops=results)


MMIFR_PROBE = '''
import json, mmcv, mmdet, mmengine, mmifr
print(json.dumps(dict(mmifr=mmifr.__file__, versions=dict(
    mmifr=mmifr.__version__, mmcv=mmcv.__version__, mmdet=mmdet.__version__,
    mmengine=mmengine.__version__))))
'''


def stage_mmifr(run: Run) -> Dict:
    if not run.args.cpu_dry_run:
        run.sh(run.python('-m', 'pip', 'install', '--no-index', '--no-deps', '-q',
                          '--no-build-isolation', '--disable-pip-version-check', '--target',
                          run.site, REPO), what='installing mmifr')
    # From outside the checkout: the installed package, version checks included.
    info = run.probe(MMIFR_PROBE, 'importing mmifr', cwd=run.work)
    if not run.args.cpu_dry_run and not info['mmifr'].startswith(run.site):
        raise StageError(f'mmifr was imported from {info["mmifr"]}, not from {run.site}')
    return info


def _junit_counts(path: str) -> Dict[str, int]:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == 'testsuite' else list(root)
    return {key: sum(int(s.get(key, 0)) for s in suites)
            for key in ('tests', 'failures', 'errors', 'skipped')}


def cuda_test_files(root: str = REPO) -> List[str]:
    """The test files that mark tests ``cuda``, relative to ``root``.

    Only they are collected: a module elsewhere that cannot be imported on
    the GPU machine (a package only the CPU set-up has) must not fail the run.
    """
    files = []
    for path in sorted(glob.glob(osp.join(root, 'tests', '**', 'test_*.py'), recursive=True)):
        with open(path) as f:
            if 'mark.cuda' in f.read():
                files.append(osp.relpath(path, root))
    return files


def stage_cuda_tests(run: Run) -> Dict:
    junit = osp.join(run.out, 'cuda_tests.xml')
    env = dict(run.env)
    if run.args.cpu_dry_run:
        if run.args.rehearse_tests:
            env['MMIFR_CUDA_TESTS_ON'] = 'cpu'
    else:
        env['MMIFR_REQUIRE_CUDA'] = '1'
    try:
        run.sh(run.python('-m', 'pytest', '-m', 'cuda', *cuda_test_files(), '-p',
                          'no:cacheprovider', '-q', '-rfEs', f'--junitxml={junit}'),
               what='the CUDA tests', env=env)
        error = None
    except StageError as e:
        error = e
    if not osp.exists(junit):
        raise error or StageError('pytest wrote no JUnit report')
    counts = _junit_counts(junit)
    run.say(f'  {counts}')
    if error:
        raise StageError(f'{counts["failures"]} failed, {counts["errors"]} errors of '
                         f'{counts["tests"]} CUDA tests: {error}')
    expect_all_skipped = run.args.cpu_dry_run and not run.args.rehearse_tests
    if counts['tests'] == 0:
        raise StageError('no test is marked cuda')
    if expect_all_skipped and counts['skipped'] != counts['tests']:
        raise StageError(f'without a GPU every CUDA test must skip: {counts}')
    if not run.args.cpu_dry_run and counts['skipped']:
        raise StageError(f'{counts["skipped"]} CUDA tests skipped on the GPU: {counts}')
    return counts


def stage_benchmark(run: Run) -> Dict:
    if run.args.no_benchmark:
        raise Skip('--no-benchmark')
    if run.remaining() < run.args.benchmark_min_s:
        raise Skip(f'{run.remaining():.0f} s left of the budget, the benchmark needs '
                   f'{run.args.benchmark_min_s:.0f} s (--benchmark-min-s)')
    args = DRY_RUN_BENCHMARK if run.args.cpu_dry_run else GPU_BENCHMARK
    run.sh(run.python(osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_ifr_cost.py'), *args,
                      '--out-dir', run.out, '--name', BENCHMARK_NAME),
           what='the cost benchmark')
    with open(osp.join(run.out, BENCHMARK_NAME + '.json')) as f:
        report = json.load(f)
    syncs = (report.get('syncs') or {}).get('rows', {})
    return dict(report=f'{BENCHMARK_NAME}.json', rows=headline(report),
                syncs={label: {k: r.get(k) for k in ('op_calls', 'op_cuda', 'forward_calls',
                                                     'forward_cuda', 'backward_calls',
                                                     'backward_cuda', 'fwd_steps')}
                       for label, r in syncs.items()})


def headline(report: Dict) -> List[Dict]:
    """The benchmark rows the summary shows: per row, time, ratio, memory, steps."""
    rows = []
    for model, section in (report.get('e2e') or {}).items():
        for key, r in section['rows'].items():
            rows.append(dict(
                model=model, row=key,
                infer_ms_per_img=r.get('infer_s_per_img') and 1000 * r['infer_s_per_img'],
                infer_ratio=r.get('infer_ratio'),
                train_ms=r.get('train_step_s') and 1000 * r['train_step_s'],
                train_ratio=r.get('train_ratio'), train_peak_mib=r.get('train_peak_mib'),
                fwd_steps=(r.get('infer_solver') or {}).get('fwd_steps')))
    return rows


STAGES = (('env', stage_env), ('wheels', stage_wheels), ('mmcv', stage_mmcv),
          ('mmcv_ops', stage_mmcv_ops), ('mmifr', stage_mmifr), ('cuda_tests', stage_cuda_tests),
          ('benchmark', stage_benchmark))


def _fmt(value, fmt='{:.1f}') -> str:
    return '-' if value is None else fmt.format(value)


def _syncs(row: Dict, prefix: str) -> str:
    calls, cuda = row.get(f'{prefix}_calls'), row.get(f'{prefix}_cuda')
    return _fmt(calls, '{}') + ('' if cuda is None else f' / {cuda}')


def _stage_note(stage: Dict) -> str:
    """One line on a stage for the summary table."""
    if stage.get('note') or stage.get('error'):
        return (stage.get('note') or stage['error']).splitlines()[0]
    d = stage.get('details') or {}
    if stage['name'] == 'env':
        gpu = f"{d['device']} (sm {d['capability']})" if d.get('device') else 'no GPU'
        return f"{gpu}, torch {d.get('torch')}, Python {d.get('python')}"
    if stage['name'] == 'mmcv':
        if d.get('build_s') is not None:
            return f"built in {d['build_s']:.0f} s for sm {d.get('arch')}, pruned {d.get('pruned')}"
        note = d.get('source') or d.get('note', '')
        if d.get('prune_rehearsal'):
            note += f"; pruning rehearsed: {d['prune_rehearsal']}"
        return note
    if stage['name'] == 'mmcv_ops' and d.get('ops'):
        return ', '.join(f'{k}: {v.split(":")[0]}' for k, v in d['ops'].items())
    if stage['name'] == 'cuda_tests' and 'tests' in d:
        return (f"{d['tests']} tests: {d['failures']} failed, {d['errors']} errors, "
                f"{d['skipped']} skipped")
    return ''


def summary_markdown(summary: Dict) -> str:
    """The summary as a short markdown page: the stages, then the benchmark's headline."""
    lines = [f"# GPU checks ({summary['mode']}): {summary['result']}", '',
             f"Started {summary['started_utc']}, {summary.get('elapsed_s', 0):.0f} s of a "
             f"{summary['budget_s']:.0f} s budget.", '',
             '| stage | status | seconds | note |', '|---|---|---|---|']
    for s in summary['stages']:
        lines.append(f"| {s['name']} | {s['status']} | {_fmt(s.get('seconds'), '{:.0f}')} | "
                     f"{_stage_note(s).replace('|', '/')} |")
    failed = [s for s in summary['stages'] if s['status'] == 'failed']
    if failed:
        lines += ['', f"## {failed[0]['name']} failed", '', '```', failed[0]['error'], '```']
    bench = next((s for s in summary['stages'] if s['name'] == 'benchmark'
                  and s['status'] == 'ok'), None)
    if bench:
        lines += ['', '## Cost (whole model; ratios against the stock head)', '',
                  '| model | row | infer [ms/img] | infer / stock | train step [ms] | '
                  'train / stock | train peak [MiB] | fwd steps (infer) |',
                  '|---|---|---|---|---|---|---|---|']
        for r in bench['details']['rows']:
            lines.append(
                f"| {r['model']} | {r['row']} | {_fmt(r['infer_ms_per_img'])} | "
                f"{_fmt(r['infer_ratio'], '{:.2f}')} | {_fmt(r['train_ms'])} | "
                f"{_fmt(r['train_ratio'], '{:.2f}')} | {_fmt(r['train_peak_mib'], '{:.0f}')} | "
                f"{_fmt(r['fwd_steps'])} |")
        syncs = bench['details'].get('syncs')
        if syncs:
            lines += ['', '## Host-device synchronisations in one IFR solve', '',
                      'Tensor calls that wait for the device (PyTorch\'s own count on CUDA '
                      'after the slash).', '',
                      '| solve | op alone | refiner forward | backward | fwd steps |',
                      '|---|---|---|---|---|']
            for label, r in syncs.items():
                counts = [_syncs(r, p) for p in ('op', 'forward', 'backward')]
                lines.append(f"| {label} | {' | '.join(counts)} | {_fmt(r['fwd_steps'])} |")
        lines += ['', f"Full report: `{BENCHMARK_NAME}.md` / `.json`."]
    return '\n'.join(lines) + '\n'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('out_dir', help='where the results go (the device tool\'s $OUT)')
    parser.add_argument('--wheels', default=osp.join(REPO, gpu_stack.WHEEL_DIR),
                        help='the carried wheel folder')
    parser.add_argument('--work', default='/tmp/mmifr_gpu_checks',
                        help='scratch: the install target, the mmcv source and build')
    parser.add_argument('--budget-s', type=float, default=540,
                        help='the whole run\'s time budget; each subprocess gets what is left')
    parser.add_argument('--benchmark-min-s', type=float, default=150,
                        help='skip the benchmark with less than this left')
    parser.add_argument('--cpu-dry-run', action='store_true',
                        help='rehearse on the CPU in this environment: no install, no build')
    parser.add_argument('--rehearse-tests', action='store_true',
                        help='dry run: run the CUDA tests on the CPU instead of skipping them')
    parser.add_argument('--full-mmcv', action='store_true',
                        help='build every mmcv kernel (never reuses a wheel built earlier)')
    parser.add_argument('--rebuild-mmcv', action='store_true',
                        help='build mmcv even when a wheel built earlier is at hand')
    parser.add_argument('--arch', help='TORCH_CUDA_ARCH_LIST (default: the GPU\'s, e.g. 9.0)')
    parser.add_argument('--jobs', type=int, help='parallel compile jobs (default: all CPUs)')
    parser.add_argument('--no-benchmark', action='store_true')
    args = parser.parse_args(argv)
    if args.rehearse_tests and not args.cpu_dry_run:
        parser.error('--rehearse-tests belongs to --cpu-dry-run')
    if args.budget_s <= 0:
        parser.error(f'--budget-s must be positive, got {args.budget_s}')
    args.wheels = osp.abspath(args.wheels)
    if not args.cpu_dry_run and not osp.isdir(args.wheels):
        parser.error(f'--wheels {args.wheels} does not exist: fetch it with '
                     'tools/device/fetch_gpu_wheels.py and carry it (docs/gpu.md)')
    return args


def main(argv=None) -> int:
    run = Run(parse_args(argv))
    run.say(f'{run.summary["mode"]} run, budget {run.args.budget_s:.0f} s, out {run.out}')
    for name, fn in STAGES:
        if not run.stage(name, lambda fn=fn: fn(run)):
            run.summary['result'] = f'failed at {name}'
            run.summary['failed_stage'] = name
            break
    else:
        skipped = [s['name'] for s in run.summary['stages'] if s['status'] == 'skipped']
        run.summary['result'] = 'ok' + (f' (skipped: {", ".join(skipped)})' if skipped else '')
    run.summary['finished_utc'] = datetime.now(timezone.utc).isoformat(timespec='seconds')
    run.write_summary()
    run.say(f'{run.summary["result"]}; summary in {osp.join(run.out, "summary.md")}')
    return 0 if 'failed_stage' not in run.summary else 1


if __name__ == '__main__':
    sys.exit(main())
