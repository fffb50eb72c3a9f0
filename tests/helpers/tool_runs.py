"""Running the ``tools/`` entry points from the tests: in subprocesses, or
imported by path."""
import importlib.util
import os
import os.path as osp
import subprocess
from types import ModuleType
from typing import Dict, List, Optional, Sequence

import pytest

#: This folder: the tests' helper modules and the probe modules the training runs import.
HELPERS_DIR = osp.dirname(osp.abspath(__file__))
#: The checkout (``tests/helpers/../..``).
REPO_ROOT = osp.dirname(osp.dirname(HELPERS_DIR))
#: The probe hooks of the ``tools/`` tests (``mmifr_test_probes.py`` here).
PROBE_MODULE = 'mmifr_test_probes'
#: The probe blocks and hooks of the training-behaviour tests (``mmifr_engine_probes.py``).
ENGINE_PROBE_MODULE = 'mmifr_engine_probes'


def run_tool_unchecked(args: List[str],
                       cwd: str,
                       timeout: float = 600,
                       env: Optional[Dict[str, str]] = None,
                       pythonpath: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """Run a ``tools/`` entry point; for runs that are expected to fail.

    Args:
        args (list[str]): Command, e.g. ``[sys.executable, 'tools/train.py', cfg]``;
            relative script paths are resolved against the repository root.
        cwd (str): Working directory (keeps ``work_dirs`` out of the repo).
        timeout (float): Seconds before the run is killed. Defaults to 600.
        env (dict, optional): Extra environment variables.
        pythonpath (Sequence[str]): Extra import directories, put in front of
            ``PYTHONPATH`` after the checkout and this folder (the probes).

    Returns:
        subprocess.CompletedProcess: The finished process (stdout and stderr
        merged in ``stdout``); never fails the test itself.
    """
    args = [a if not a.startswith('tools/') else osp.join(REPO_ROOT, a) for a in args]
    full_env = dict(os.environ)
    # The tools must find ``mmifr`` even if it is not pip-installed, and the
    # training runs the probe modules of this folder.
    full_env['PYTHONPATH'] = os.pathsep.join(
        [REPO_ROOT, HELPERS_DIR, *pythonpath] +
        ([full_env['PYTHONPATH']] if full_env.get('PYTHONPATH') else []))
    # One intra-op thread per process: the CI machine has 2 shared cores, and
    # oversubscription makes the multi-process tests crawl.
    full_env.setdefault('OMP_NUM_THREADS', '1')
    full_env.update(env or {})
    return subprocess.run(
        args,
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout)


def run_tool(args: List[str],
             cwd: str,
             timeout: float = 600,
             env: Optional[Dict[str, str]] = None,
             pythonpath: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """:func:`run_tool_unchecked`, failing the test with the tool's output if it fails."""
    proc = run_tool_unchecked(args, cwd, timeout=timeout, env=env, pythonpath=pythonpath)
    if proc.returncode != 0:
        pytest.fail(f'{" ".join(proc.args)} exited with {proc.returncode}:\n{proc.stdout[-6000:]}')
    return proc


def load_tool(path: str) -> ModuleType:
    """Import a ``tools/`` script as a module (``tools/`` is not a package).

    Args:
        path (str): The script, relative to the checkout, e.g.
            ``'tools/analysis_tools/probe_condinst.py'``.

    Returns:
        ModuleType: The executed module, named after the file.
    """
    name = osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO_ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
