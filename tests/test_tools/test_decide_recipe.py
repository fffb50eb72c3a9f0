"""``tools/analysis_tools/decide_recipe.py``: the decision rule on hand-made seed studies."""
import json

import pytest
from tool_runs import load_tool

tool = load_tool('tools/analysis_tools/decide_recipe.py')
STOCK, REF, CAND = 'pair:baseline', 'pair:ifr', 'budget:ifr'


def _runs(stock, reference, candidate):
    runs = []
    for (row, head), values in ((('pair', 'baseline'), stock), (('pair', 'ifr'), reference),
                                (('budget', 'ifr'), candidate)):
        runs += [dict(row=row, head=head, config=f'{row}.py', seed=seed, iterations=900,
                      segm_AP=segm, bbox_AP=segm + 10) for seed, segm in enumerate(values)]
    return dict(runs=runs)


def _decide(tmp_path, studies, *extra):
    paths = []
    for name, study in studies.items():
        path = tmp_path / f'{name}.json'
        path.write_text(json.dumps(study))
        paths.append(f'{name}={path}')
    out = tmp_path / 'decision'
    assert tool.main(['--study', *paths, '--stock', STOCK, '--reference', REF, '--candidate',
                      CAND, '--out', str(out), *extra]) == 0
    return json.loads((tmp_path / 'decision.json').read_text())


def test_candidate_within_the_margin_on_every_test_set_is_adopted(tmp_path):
    val = _runs([30, 30, 30, 30], [31, 32, 31, 32], [31, 31.5, 31, 31.5])  # -0.25
    held = _runs([20, 20, 20, 20], [21, 21, 21, 21], [22, 20, 21, 21])  # 0.0
    result = _decide(tmp_path, dict(val=val, heldout=held))
    assert result['verdict'] == 'adopt'
    diff = result['test_sets']['val']['differences']['candidate - reference']['segm_AP']
    assert diff['mean'] == pytest.approx(-0.25) and diff['n'] == 4
    assert result['test_sets']['val']['differences']['reference - stock']['segm_AP'][
        'mean'] == pytest.approx(1.5)
    assert 'Verdict: adopt' in (tmp_path / 'decision.md').read_text()


def test_candidate_behind_on_one_test_set_keeps_the_reference(tmp_path):
    val = _runs([30] * 4, [31] * 4, [31] * 4)
    held = _runs([20] * 4, [21] * 4, [20.6] * 4)  # -0.4 < -0.3
    result = _decide(tmp_path, dict(val=val, heldout=held))
    assert result['verdict'] == 'keep' and 'heldout' in result['why']
    assert _decide(tmp_path, dict(val=val, heldout=held), '--margin', '0.5')['verdict'] == 'adopt'


def test_too_few_paired_seeds_leave_it_undecided(tmp_path):
    study = _runs([30] * 4, [31] * 4, [35] * 3)  # the candidate ran 3 seeds
    result = _decide(tmp_path, dict(val=study))
    assert result['verdict'] == 'undecided' and '3 paired seed' in result['why']
    assert result['test_sets']['val']['seeds'] == [0, 1, 2]


@pytest.mark.parametrize('argv, match', [
    (['--stock', 'pair'], 'ROW:HEAD'),
    (['--stock', 'pair:stock'], 'ROW:HEAD'),
    (['--study', 'no-equals-sign'], 'NAME=PATH'),
    (['--margin', '-1'], '--margin'),
])
def test_bad_arguments_are_named(argv, match, capsys):
    base = dict(zip(['--study', '--stock', '--reference', '--candidate', '--out'],
                    ['val=x.json', STOCK, REF, CAND, 'out']))
    base.update(dict(zip(argv[::2], argv[1::2])))
    with pytest.raises(SystemExit):
        tool.parse_args([item for pair in base.items() for item in pair])
    assert match in capsys.readouterr().err


def test_a_model_missing_from_a_study_is_named(tmp_path):
    study = _runs([30] * 4, [31] * 4, [])
    with pytest.raises(ValueError, match='budget:ifr'):
        _decide(tmp_path, dict(val=study))
