"""``tools.lib.benchmark.ifr_cost_e2e``: where the whole-model rows find their checkpoints
and their generated data."""
import json
from argparse import Namespace

from tools.lib.benchmark.ifr_cost_e2e import DEMO_DIR, generated_shapes, mbv2_checkpoints
from tools.lib.shapes_data import CLASSES


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


def test_generated_shapes_are_written_once_per_run(tmp_path):
    args = Namespace(shapes_root=str(tmp_path / 'shapes'), e2e_size=[64, 48], e2e_train_batch=1,
                     e2e_images=3, seed=0)
    root, classes = generated_shapes(args)
    assert (root, classes) == (str(tmp_path / 'shapes'), CLASSES)
    val = json.loads((tmp_path / 'shapes' / 'annotations' / 'instances_val.json').read_text())
    assert [(im['width'], im['height']) for im in val['images']] == [(64, 48)] * 3
    train = tmp_path / 'shapes' / 'annotations' / 'instances_train.json'
    assert len(json.loads(train.read_text())['images']) == 2  # at least 2 training images
    train.unlink()
    # The run's dataset is reused, not written again.
    assert generated_shapes(args)[0] == root and not train.exists()
