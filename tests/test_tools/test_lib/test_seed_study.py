"""``tools.lib.seed_study``: the statistics and tables of a seed study."""
import math

import pytest

from tools.lib.seed_study import aggregate, mean_std, paired_difference, seed_study_markdown


def _run(head, seed, segm, bbox, row='pair'):
    return dict(row=row, head=head, config=f'{head}.py', seed=seed, iterations=450,
                segm_AP=segm, bbox_AP=bbox)


def test_mean_and_sample_std():
    stat = mean_std([30.0, 32.0, 34.0])
    assert stat['mean'] == pytest.approx(32.0)
    assert stat['std'] == pytest.approx(2.0)  # ddof=1: sqrt((4 + 0 + 4) / 2)
    assert stat['n'] == 3
    assert mean_std([5.0]) == dict(mean=5.0, std=0.0, n=1)
    assert mean_std([]) == dict(mean=None, std=None, n=0)


def test_aggregate_pairs_the_delta_by_seed():
    runs = [
        _run('baseline', 0, 30.0, 40.0), _run('baseline', 1, 32.0, 41.0),
        _run('baseline', 2, 28.0, None),
        _run('ifr', 0, 31.0, 42.0), _run('ifr', 1, 35.0, 42.0),
    ]
    (entry, ) = aggregate(runs)
    assert entry['seeds'] == {'baseline': [0, 1, 2], 'ifr': [0, 1]}
    assert entry['baseline']['segm_AP']['mean'] == pytest.approx(30.0)
    # A missing metric is left out of its mean, not counted as 0.
    assert entry['baseline']['bbox_AP'] == pytest.approx(dict(mean=40.5, std=math.sqrt(0.5), n=2))
    # Paired over the seeds both heads ran (0 and 1): +1 and +3.
    assert entry['delta']['segm_AP'] == pytest.approx(dict(mean=2.0, std=math.sqrt(2.0), n=2))
    assert entry['delta']['bbox_AP'] == pytest.approx(dict(mean=1.5, std=math.sqrt(0.5), n=2))


def test_rows_keep_their_order_and_bad_runs_are_named():
    runs = [_run('baseline', 0, 1.0, 1.0, row='b'), _run('baseline', 0, 1.0, 1.0, row='a')]
    assert [e['row'] for e in aggregate(runs)] == ['b', 'a']
    with pytest.raises(ValueError, match=r"lacks the key\(s\) \['seed'\]"):
        aggregate([{k: v for k, v in _run('ifr', 0, 1.0, 1.0).items() if k != 'seed'}])
    with pytest.raises(ValueError, match="head='stock'"):
        aggregate([_run('stock', 0, 1.0, 1.0)])


def test_markdown_lists_every_run_and_the_aggregate():
    runs = [_run('baseline', 0, 30.0, 40.0), _run('ifr', 0, 31.0, 42.0),
            _run('baseline', 1, 32.0, 41.0), _run('ifr', 1, 35.0, 42.0)]
    table = seed_study_markdown(runs, 'study')
    assert '| pair | stock | 0 | 450 | 30.0 | 40.0 |' in table
    assert '| pair | IFR | 1 | 450 | 35.0 | 42.0 |' in table
    assert '| pair | stock | 31.0 +- 1.4 (n=2) | 40.5 +- 0.7 (n=2) |' in table
    assert '| | IFR - stock (paired by seed) | +2.0 +- 1.4 (n=2) | +1.5 +- 0.7 (n=2) |' in table


def test_markdown_names_each_head_by_its_label_within_its_row():
    runs = [_run('baseline', 0, 30.0, 40.0, row='t1'), _run('ifr', 0, 31.0, 42.0, row='t1'),
            _run('baseline', 0, 30.0, 40.0, row='pair'), _run('ifr', 0, 29.0, 41.0, row='pair')]
    runs[0]['label'], runs[1]['label'] = '4 convs', '4*'
    table = seed_study_markdown(runs, 'study')
    assert '| t1 | 4* | 0 | 450 | 31.0 | 42.0 |' in table
    assert '| | 4* - 4 convs (paired by seed) | +1.0 +- 0.0 (n=1) | +2.0 +- 0.0 (n=1) |' in table
    # Rows without labels keep stock / IFR.
    assert '| pair | IFR | 0 | 450 | 29.0 | 41.0 |' in table
    assert '| | IFR - stock (paired by seed) | -1.0 +- 0.0 (n=1) | +1.0 +- 0.0 (n=1) |' in table


def test_paired_difference_compares_models_of_two_rows_by_seed():
    runs = [
        _run('ifr', 0, 30.0, 40.0, row='default'), _run('ifr', 1, 32.0, 41.0, row='default'),
        _run('ifr', 2, 31.0, 41.0, row='default'),
        _run('ifr', 0, 29.0, 40.0, row='budget'), _run('ifr', 1, 33.0, None, row='budget'),
        _run('baseline', 0, 1.0, 1.0, row='budget'),
    ]
    diff = paired_difference(runs, ('budget', 'ifr'), ('default', 'ifr'))
    # Seed 2 has no budget run; the stock run of the budget row is not a recipe.
    assert diff['per_seed'] == {0: -1.0, 1: 1.0}
    assert diff['mean'] == pytest.approx(0.0) and diff['n'] == 2
    box = paired_difference(runs, ('budget', 'ifr'), ('default', 'ifr'), 'bbox_AP')
    assert box['per_seed'] == {0: 0.0}  # seed 1 lacks the metric
    with pytest.raises(ValueError, match="'missing'"):
        paired_difference(runs, ('missing', 'ifr'), ('default', 'ifr'))
