"""``import mmifr`` loads the IFR core only: no benchmark, report, study or probe module."""
import json
import os.path as osp
import re
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: Names of the analysis code that lives in ``tools/lib`` (what a config or train/test run never
#: needs).
ANALYSIS_NAME = re.compile(r'benchmark|report|seed_study|probe|released_solver|ifr_cost')


def test_import_mmifr_loads_no_analysis_module():
    # A fresh interpreter: this test session has imported the tools' library already. The
    # checkout is the working directory (first on sys.path), so an import of `tools.lib` from
    # the package would succeed here and be seen, instead of only failing in a wheel install.
    code = ('import json, sys; import mmifr; '
            'print(json.dumps({n: getattr(m, "__file__", None) for n, m in sys.modules.items()}))')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=REPO,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    modules = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = {n: f for n, f in modules.items() if n == 'tools' or n.startswith(('mmifr', 'tools.'))}
    assert 'mmifr.models' in ours  # the core did register
    assert not [n for n in ours if n == 'tools' or n.startswith('tools.')]
    assert not [n for n in ours if ANALYSIS_NAME.search(n)]
    tools_dir = osp.join(REPO, 'tools') + osp.sep
    assert not [f for f in modules.values() if f and osp.abspath(f).startswith(tools_dir)]
