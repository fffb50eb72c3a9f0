"""Tests of :mod:`tools.lib.mask_head_probe` on towers with known answers
(the command line runs in tests/test_tools/test_analysis_tools.py)."""
import torch
import torch.nn.functional as F

from tools.lib.mask_head_probe import tower_response


def _x():
    torch.manual_seed(0)
    return torch.randn(4, 8, 14, 14)


def test_a_linear_tower_has_relative_sensitivity_one():
    result = tower_response(lambda x: 3 * x, _x())
    assert abs(result['sensitivity'] - 1) < 1e-4
    assert abs(result['out_rms'] / (3 * _x().pow(2).mean().sqrt().item()) - 1) < 1e-4


def test_a_saturating_tower_is_less_sensitive():
    result = tower_response(lambda x: torch.tanh(10 * x), _x())
    assert result['sensitivity'] < 0.5


def test_locality_separates_a_local_from_a_global_tower():
    """A 3x3 smoothing leaves the border rows untouched by a change at the
    centre; adding the RoI's spatial mean moves every cell."""
    local = tower_response(lambda x: F.avg_pool2d(x, 3, 1, 1) + 0.1 * x.mean((2, 3), True), _x())
    global_ = tower_response(lambda x: x + 50 * x.mean((2, 3), True), _x())
    assert local['locality'] > 10 * global_['locality']
    assert global_['locality'] < 5


def test_the_probe_is_deterministic():
    assert tower_response(torch.sin, _x()) == tower_response(torch.sin, _x())
