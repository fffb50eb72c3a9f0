"""``tools/analysis_tools/get_flops.py``: FLOPs of the refiners per solver step."""
import os.path as osp
import subprocess
import sys

import pytest
from tool_runs import load_tool
from torch import nn

from mmifr.models.layers import IFRRefiner

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
tool = load_tool('tools/analysis_tools/get_flops.py')


class _Head(nn.Module):

    def __init__(self, in_channels, channels):
        super().__init__()
        self.tower = nn.ModuleList([IFRRefiner(in_channels=in_channels, channels=channels)])


def test_one_step_is_two_convs_and_parity_is_two_steps():
    (row, ) = tool.refiner_flops(_Head(16, 16), (6, 5), stock_convs=4, steps=[1, 3])
    conv = 9 * 16 * 16 * 6 * 5  # multiply-adds of one 3x3 conv, no bias counted
    assert row['refiner'] == 'tower.0' and row['input'] == [16, 6, 5]
    assert row['stock_tower'] == 4 * conv
    # Two convs plus three GroupNorms (a few FLOPs per element each: +5 % here,
    # +0.3 % at 256 channels).
    assert 2 * conv < row['block'] < 2.2 * conv
    assert row['inject'] == 0
    assert row['parity_steps'] == pytest.approx(4 * conv / row['block'])
    assert 1.8 < row['parity_steps'] < 2.0
    assert row['at_steps'] == {'1': row['block'], '3': 3 * row['block']}


def test_an_input_projection_is_counted_once_per_solve():
    (row, ) = tool.refiner_flops(_Head(18, 16), (4, 4), stock_convs=4, steps=[2])
    assert row['input'] == [18, 4, 4]
    assert row['inject'] >= 18 * 16 * 4 * 4  # the 1x1 projection
    assert row['at_steps']['2'] == row['inject'] + 2 * row['block']
    # The stock tower's first conv reads the 18 input channels.
    assert row['stock_tower'] == 9 * 16 * 16 * (18 + 3 * 16)


def test_a_model_without_refiners_is_refused():
    with pytest.raises(ValueError, match='no IFRRefiner'):
        tool.refiner_flops(nn.Conv2d(1, 1, 1), (2, 2), stock_convs=4)


@pytest.mark.slow
def test_cli_prints_the_table_for_the_demo_config():
    out = subprocess.run([
        sys.executable, 'tools/analysis_tools/get_flops.py',
        'configs/ifr/demo/mask-rcnn_mbv2_fpn_shapes_ifr.py', '--steps', '4.4', '--cfg-options',
        'model.backbone.init_cfg=None'
    ], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=300).stdout
    assert '| roi_head.mask_head.convs.0 | (256, 14, 14) | 0.232 | 0.462 | 1.99 | 1.021 |' in out
