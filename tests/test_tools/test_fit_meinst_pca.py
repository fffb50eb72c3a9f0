"""End-to-end test of ``tools/analysis_tools/fit_meinst_pca.py`` on a tiny COCO set."""
import os.path as osp
import re
import subprocess
import sys

from mmifr.models.task_modules import PCAMaskCoder

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_fit_meinst_pca_writes_a_pca_the_coder_loads(tiny_coco_factory, tmp_path):
    train = tiny_coco_factory(str(tmp_path), num_images=10)['ann_path']
    val = tiny_coco_factory(str(tmp_path), num_images=4, split='val', seed=1)['ann_path']
    out = tmp_path / 'pca.pth'
    proc = subprocess.run([
        sys.executable, osp.join(REPO_ROOT, 'tools', 'analysis_tools', 'fit_meinst_pca.py'),
        train, '--out', str(out), '--dim', '6', '--mask-size', '14', '--val-ann-file', val
    ], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ious = re.findall(r'reconstruction IoU \((train|val)\): ([0-9.]+)', proc.stdout)
    assert [k for k, _ in ious] == ['train', 'val']
    assert all(0.5 < float(v) <= 1 for _, v in ious)
    coder = PCAMaskCoder(dim=6, mask_size=14, pca_file=str(out))
    assert coder.explained_variance.gt(0).all()
