"""``tools/lib/benchmark/model_inference.py``: the model-zoo benchmark's
in-process measurement."""
import os
import os.path as osp
import subprocess
import sys

import pytest

from tool_runs import REPO_ROOT
from tools.lib.benchmark.model_inference import measure


@pytest.mark.parametrize('model', ['sipmask-vis', 'masktrack-rcnn'])
def test_video_models_are_timed_per_frame_on_a_clip(tmp_path, model):
    """The in-process measurement runs a video model on whole clips (mmdet's
    image inference API cannot), per frame."""
    data = tmp_path / 'video'
    subprocess.run([
        sys.executable, 'tools/dataset_converters/make_shapes_video_dataset.py', '--out',
        str(data), '--num-train', '1', '--num-val', '1', '--frames', '3', '--size', '64'
    ], cwd=REPO_ROOT, check=True, capture_output=True, env=dict(os.environ, OMP_NUM_THREADS='1'))
    options = {
        'test_dataloader.dataset.data_root': f'{data}/',
        'model.detector.backbone.init_cfg': None,
    }
    config = osp.join(REPO_ROOT, f'configs/ifr/demo/{model}_mbv2_fpn_shapes-video_ifr.py')
    out = measure(config, None, options, 'cpu', num_images=3)
    assert out['infer_ms'] > 0 and out['head_params'] > 0
    if model == 'sipmask-vis':
        # Its refiners sit in the box head and run on every frame.
        assert out['solver_steps'] >= 1
