"""Tests of the frontier's aggregation, table and picture
(:mod:`tools.lib.benchmark.frontier`); the evaluation itself is the cost
benchmark's accuracy section."""
import pytest

from tools.lib.benchmark.frontier import (OWN, frontier_markdown, frontier_point,
                                          frontier_settings, merge_points, plot_frontier)


def _run(seed, setting, ap, stock, cost, residual=None):
    return dict(seed=seed, setting=setting, segm_AP=ap, stock_segm_AP=stock,
                segm_AP_delta=ap - stock, cost_ratio=cost, iterate_residual=residual)


def test_settings_are_the_budgets_then_the_full_solve():
    settings = frontier_settings([1, 3])
    assert settings[0] == ('K=1', dict(solver='unroll', max_iter=1))
    assert settings[1] == ('K=3', dict(solver='unroll', max_iter=3))
    assert settings[2][0] == 'full solve' and settings[2][1]['solver'] == 'broyden'


def test_point_aggregates_paired_seeds():
    runs = [_run(0, 'K=2', 31.0, 30.0, 1.1, 0.2), _run(1, 'K=2', 29.0, 30.0, 1.3, 0.4)]
    point = frontier_point('budget 2', 'K=2', runs)
    assert point['seeds'] == [0, 1]
    assert point['segm_AP_delta']['mean'] == pytest.approx(0.0)
    assert point['segm_AP_delta']['std'] == pytest.approx(2 ** 0.5)
    assert point['cost_ratio']['mean'] == pytest.approx(1.2)
    assert point['iterate_residual']['mean'] == pytest.approx(0.3)
    # No residual measured: no key, and the table shows a dash.
    bare = frontier_point('stockish', 'full solve', [_run(0, 'full solve', 30.0, 30.0, 3.0)])
    assert 'iterate_residual' not in bare
    table = frontier_markdown([point, bare], 'title')
    assert '| budget 2 | K=2 | 1.20 +- 0.14 | 30.0 +- 1.4 | 0.0 +- 1.4 | 0.300 +- 0.141 | 0, 1 |' \
        in table
    assert table.splitlines()[-1].split('|')[6].strip() == '-'


def test_picture_is_written_and_draws_a_budget_models_own_inference_once(tmp_path, monkeypatch):
    own = frontier_point('budget 2', OWN, [_run(0, OWN, 31.0, 30.0, 1.05, 0.2)])
    k2 = frontier_point('budget 2', 'K=2', [_run(0, 'K=2', 31.0, 30.0, 1.04, 0.2)])
    k1 = frontier_point('budget 2', 'K=1', [_run(0, 'K=1', 28.0, 30.0, 0.9, 0.5)])
    labels = []
    import matplotlib.axes
    original = matplotlib.axes.Axes.annotate
    monkeypatch.setattr(matplotlib.axes.Axes, 'annotate',
                        lambda self, text, *a, **k: labels.append(text) or original(
                            self, text, *a, **k))
    path = tmp_path / 'frontier.png'
    plot_frontier([own, k2, k1], str(path), 'title')
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert sorted(labels) == ['K=1', 'K=2 (own)']


def test_points_of_separate_processes_merge_by_recipe_and_setting():
    first = dict(points=[frontier_point('budget 2', 'K=2', [_run(0, 'K=2', 31.0, 30.0, 1.1)])])
    second = dict(points=[frontier_point('budget 2', 'K=2', [_run(1, 'K=2', 29.0, 30.0, 1.3)]),
                          frontier_point('budget 2', 'K=1', [_run(1, 'K=1', 28.0, 30.0, 0.9)])])
    merged = merge_points([first, second])
    assert [(p['setting'], p['seeds']) for p in merged] == [('K=2', [0, 1]), ('K=1', [1])]
    assert merged[0] == frontier_point('budget 2', 'K=2', first['points'][0]['runs'] +
                                       second['points'][0]['runs'])
    with pytest.raises(ValueError, match=r'budget 2 / K=2: seed\(s\) \[0\] are in more than one'):
        merge_points([first, first])
