"""``tools/write_model_zoo_table.py`` and :mod:`tools.lib.model_zoo_table`: the demo
model-zoo table, generated from the seed studies' result files."""
import copy
import json
import os.path as osp

import pytest
import yaml
from tool_runs import load_tool

from tools.lib import model_zoo_table as zoo

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MANIFEST = osp.join(REPO, 'configs', 'ifr', 'demo', 'model_zoo_demo.yml')
DEMO = 'configs/ifr/demo'
#: The row keys the table promises (the model-zoo issue's list).
ROW_KEYS = {'framework', 'metric', 'schedule', 'ifr_towers', 'seeds', 'stock', 'ifr', 'delta',
            'heldout', 'comparable', 'paper', 'mmdet', 'verdict'}


def _tool():
    return load_tool('tools/write_model_zoo_table.py')


def test_the_committed_table_json_and_readme_agree_with_the_result_files():
    assert _tool().main(['--check']) == 0


def test_the_table_has_the_17_frameworks_of_the_paper_with_every_key():
    with open(osp.join(REPO, 'docs', 'results', 'model_zoo_demo.json')) as f:
        table = json.load(f)
    rows = table['rows']
    assert len(rows) == 17 and len({r['framework'] for r in rows}) == 17
    for row in rows:
        assert ROW_KEYS <= set(row), row['framework']
        assert row['metric'] in ('mask', 'box', 'vis')
        assert row['comparable'] or row['reason'], row['framework']
        assert (row['verdict'] in ('ahead', 'level', 'behind')) == row['comparable']
    assert 'protocol' in table and 'Broyden' in table['protocol']


def _run(row, head, seed, ap, config, test_set=None):
    return dict(row=row, head=head, label=None, config=config, seed=seed, iterations=450,
                segm_AP=ap, bbox_AP=ap + 10, test_set=test_set, checkpoint='-')


@pytest.fixture
def study(tmp_path):
    """A results folder with a Mask R-CNN study (3 seeds, held-out too) and a
    manifest naming it."""
    stock = f'{DEMO}/mask-rcnn_mbv2_fpn_shapes_baseline.py'
    ifr = f'{DEMO}/mask-rcnn_mbv2_fpn_shapes_ifr.py'
    val = [_run('r', 'baseline', s, ap, stock) for s, ap in enumerate([30.0, 31.0, 32.0])]
    val += [_run('r', 'ifr', s, ap, ifr) for s, ap in enumerate([33.0, 35.0, 37.0])]
    held = [dict(r, test_set='heldout', segm_AP=r['segm_AP'] - 5) for r in val]
    (tmp_path / 'val.json').write_text(json.dumps(dict(runs=val)))
    (tmp_path / 'held.json').write_text(json.dumps(dict(runs=held)))
    spec = dict(framework='Mask R-CNN', paper='mask_rcnn_r50_ifr_1x', metric='mask',
                results='val.json', heldout='held.json', row='r')

    def build(**changes):
        manifest = tmp_path / 'manifest.yml'
        manifest.write_text(yaml.safe_dump(dict(rows=[dict(copy.deepcopy(spec), **changes)])))
        return zoo.build_table(str(manifest), str(tmp_path))['rows'][0]

    return build


def test_a_row_pairs_seeds_and_reads_the_paper_and_mmdet_numbers(study):
    row = study()
    assert row['seeds'] == [0, 1, 2]
    assert row['stock']['mean'] == pytest.approx(31.0) and row['ifr']['mean'] == pytest.approx(35.0)
    assert row['delta']['per_seed'] == {'0': 3.0, '1': 4.0, '2': 5.0}
    assert row['heldout']['delta']['mean'] == pytest.approx(4.0)
    assert row['ifr_towers'] == ['roi_head.mask_head.convs']
    assert row['paper'] == dict(table=2, baseline=35.1, ifr=36.1, delta=1.0)
    # mmdet's metafile entry of the baseline config mask-rcnn_r50_fpn_1x_coco.
    assert row['mmdet'] == dict(value=34.7, model='mask-rcnn_r50_fpn_1x_coco')
    # +4.0 against spreads of 1.0 + 2.0: ahead.
    assert row['comparable'] and row['verdict'] == 'ahead'


def test_rows_that_compare_nothing_say_why(study, tmp_path):
    runs = json.loads((tmp_path / 'val.json').read_text())['runs']
    for r in runs:
        if r['head'] == 'baseline':
            r['segm_AP'] -= 15  # a stock side that has not learned
    (tmp_path / 'val.json').write_text(json.dumps(dict(runs=runs)))
    row = study(reason='measured: its loss does not fall')
    assert not row['comparable'] and row['verdict'] is None
    assert row['reason'].startswith('the stock side has not learned (16.0 < 20 AP on val)')
    assert row['reason'].endswith('measured: its loss does not fall')


def test_runs_trained_with_other_towers_do_not_compare(study):
    row = study(ifr_config=f'{DEMO}/mask-rcnn_mbv2_fpn_shapes_ifr.py')
    assert row['comparable']
    row = study(ifr_config=f'{DEMO}/solo_mbv2_fpn_shapes_ifr-all-towers.py')
    assert row['ifr_towers'] == ['mask_head.cls_convs', 'mask_head.mask_convs']
    assert not row['comparable'] and 'to be retrained' in row['reason']


@pytest.mark.parametrize('delta, expected', [(3.1, 'ahead'), (3.0, 'level'), (-2.9, 'level'),
                                             (-3.1, 'behind')])
def test_verdict_takes_the_two_seed_spreads(delta, expected):
    assert zoo.verdict(dict(mean=delta), dict(std=1.0), dict(std=2.0)) == expected


def test_bad_manifests_are_named(tmp_path):
    manifest = tmp_path / 'm.yml'
    manifest.write_text(yaml.safe_dump(dict(rows=[dict(framework='X', paper='p', metric='segm',
                                                       results='r.json', row='r')])))
    with pytest.raises(ValueError, match="row 'X': metric='segm'; allowed"):
        zoo.load_manifest(str(manifest))
    manifest.write_text(yaml.safe_dump(dict(rows=[dict(framework='X', metric='mask', seeds=3)])))
    with pytest.raises(ValueError, match=r"missing key\(s\) \['paper', 'results', 'row'\], "
                       r"unknown key\(s\) \['seeds'\]"):
        zoo.load_manifest(str(manifest))


def test_the_readme_blocks_are_replaced_and_read_back():
    begin, end = zoo.markers('model_zoo_demo')
    text = f'intro\n{begin}\nold\n{end}\nrest\n'
    new = zoo.embed(text, 'new table\n')
    assert new == f'intro\n{begin}\nnew table\n{end}\nrest\n'
    assert zoo.embedded(new) == 'new table\n'
    with pytest.raises(ValueError, match='has no'):
        zoo.embed(new, 'x', 'model_zoo_summary')


def test_check_fails_on_a_stale_output(tmp_path, capsys):
    readme = tmp_path / 'README.md'
    blocks = ['\n'.join(zoo.markers(name)) for name in (zoo.TABLE_BLOCK, zoo.SUMMARY_BLOCK)]
    readme.write_text('\nstale\n'.join(blocks) + '\n')
    args = ['--readme', str(readme), '--summary-readme', str(readme), '--out',
            str(tmp_path / 'table')]
    tool = _tool()
    assert tool.main(args + ['--check']) == 1
    assert 'out of date' in capsys.readouterr().err
    assert tool.main(args) == 0
    assert tool.main(args + ['--check']) == 0
    text = readme.read_text()
    assert '| Mask R-CNN | mask |' in text and 'Of the 17 frameworks' in text


def test_a_note_is_carried_into_the_row_and_its_table_line(study):
    row = study(note='seed 0 on another machine')
    assert row['note'] == 'seed 0 on another machine'
    line = zoo.table_markdown(dict(protocol='p', comparable_rule='c', verdict_rule='v',
                                   rows=[row])).splitlines()[2]
    assert line.startswith('| Mask R-CNN |') and '**ahead**; seed 0 on another machine |' in line


def test_a_control_column_is_paired_with_the_ifr_side_on_both_test_sets(study, tmp_path):
    gn = f'{DEMO}/retinanet_mbv2_fpn_shapes_baseline-gn-head.py'
    val = [_run('gn', 'baseline', s, ap, gn) for s, ap in enumerate([34.0, 34.0, 31.0])]
    held = [dict(r, test_set='heldout', segm_AP=r['segm_AP'] - 4) for r in val]
    (tmp_path / 'gn.json').write_text(json.dumps(dict(runs=val)))
    (tmp_path / 'gn_held.json').write_text(json.dumps(dict(runs=held)))
    control = dict(name='stock + GN head', results='gn.json', heldout='gn_held.json', row='gn')
    row = study(control=control)
    gn_row = row['control']
    assert gn_row['name'] == 'stock + GN head' and gn_row['mean'] == pytest.approx(33.0)
    # IFR 33 / 35 / 37 against 34 / 34 / 31, seed by seed.
    assert gn_row['delta']['per_seed'] == {'0': -1.0, '1': 1.0, '2': 6.0}
    assert gn_row['heldout']['delta']['per_seed'] == {'0': -2.0, '1': 0.0, '2': 5.0}
    # The row's own comparison stays against its stock side.
    assert row['delta']['mean'] == pytest.approx(4.0) and row['verdict'] == 'ahead'
    line = zoo.table_markdown(dict(protocol='p', comparable_rule='c', verdict_rule='v',
                                   rows=[row])).splitlines()[2]
    assert '; stock + GN head: 33.0 +- 1.7, IFR - it +2.0 +- 3.6 (held out +1.0 +- 3.6) |' in line
    # The row's own held-out column stays IFR - stock.
    assert '| +4.0 +- 1.0 | +4.0 +- 1.0 | **ahead**' in line
    with pytest.raises(ValueError, match="control 'x': keys .*it needs name, results and row"):
        study(control=dict(name='x', results='gn.json'))
