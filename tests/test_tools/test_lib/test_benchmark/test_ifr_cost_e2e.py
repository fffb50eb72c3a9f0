"""``tools.lib.benchmark.ifr_cost_e2e``: where the whole-model rows find their checkpoints."""
from argparse import Namespace

from tools.lib.benchmark.ifr_cost_e2e import DEMO_DIR, mbv2_checkpoints


def _write_demo_markers(root):
    for side in ('baseline', 'ifr'):
        marker = root / DEMO_DIR / side / 'last_checkpoint'
        marker.parent.mkdir(parents=True)
        marker.write_text(f'/ckpts/{side}.pth\n')


def test_explicit_checkpoints_win(tmp_path, monkeypatch):
    _write_demo_markers(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert mbv2_checkpoints(Namespace(mbv2_checkpoints=['a.pth', 'b.pth'])) == ('a.pth', 'b.pth')


def test_the_demo_run_in_the_working_directory_is_found(tmp_path, monkeypatch):
    # The demo's work_dirs are where the user ran it: in a wheel install the tools' own root
    # (mmifr/.mim) holds none.
    _write_demo_markers(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert mbv2_checkpoints(Namespace(mbv2_checkpoints=None)) == ('/ckpts/baseline.pth',
                                                                  '/ckpts/ifr.pth')
