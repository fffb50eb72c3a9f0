"""``tools/analysis_tools/ifr_frontier.py``: its arguments and ``--merge`` (the
evaluation itself: tests/test_tools/test_lib/test_benchmark/test_frontier.py)."""
import json

import pytest
from tool_runs import load_tool

from tools.lib.benchmark.frontier import frontier_point

tool = load_tool('tools/analysis_tools/ifr_frontier.py')


def _report(tmp_path, name, seed, ap):
    runs = [dict(seed=seed, setting='K=2', segm_AP=ap, stock_segm_AP=30.0 + seed,
                 segm_AP_delta=ap - 30.0 - seed, cost_ratio=1.1, iterate_residual=None)]
    path = tmp_path / f'{name}.json'
    path.write_text(json.dumps(dict(points=[frontier_point('budget 2', 'K=2', runs)])))
    return str(path)


def test_merge_writes_one_report_of_every_seed(tmp_path):
    out = tmp_path / 'merged'
    tool.main(['--merge', _report(tmp_path, 'a', 0, 31.0), _report(tmp_path, 'b', 1, 29.0),
               '--out', str(out)])
    report = json.loads((tmp_path / 'merged.json').read_text())
    (point, ) = report['points']
    assert point['seeds'] == [0, 1] and point['segm_AP']['mean'] == pytest.approx(30.0)
    assert report['title'] == 'IFR cost / accuracy frontier (seeds [0, 1]; stock mask AP 30.5)'
    assert (tmp_path / 'merged.md').exists() and (tmp_path / 'merged.png').stat().st_size > 0


@pytest.mark.parametrize('argv, message', [
    (['--seeds', '0'], '--rows, --work-dir required'),
    (['--merge', 'a.json', '--seeds', '0'], '--merge joins reports'),
])
def test_bad_arguments_are_named(argv, message, capsys):
    with pytest.raises(SystemExit):
        tool.parse_args(argv)
    assert message in capsys.readouterr().err
