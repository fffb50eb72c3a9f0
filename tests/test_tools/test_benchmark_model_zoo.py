"""``tools/benchmark_model_zoo.py``: rows, table, and a 2-iteration end-to-end run."""
import glob
import json
import os
import os.path as osp
import sys

import pytest
import torch
import yaml
from mmengine.config import Config
from tool_runs import load_tool

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = 'configs/ifr/demo/mask-rcnn_mbv2_fpn_shapes_{}.py'


tool = load_tool('tools/benchmark_model_zoo.py')


def _args(**kwargs):
    return type('Args', (), {'rows': None, 'models': None, 'seeds': None, **kwargs})


def test_metafile_rows_name_their_mmdet_baselines():
    rows = tool.load_rows(_args(models=['mask_rcnn_r50_ifr_1x', 'retinanet_r50_ifr_1x']))
    assert [r['metric'] for r in rows] == ['segm', 'bbox']
    assert rows[0]['baseline']['config'] == 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
    assert osp.exists(tool.resolve_config(rows[0]['baseline']['config']))
    assert osp.exists(tool.resolve_config(rows[0]['ifr']['config']))


@pytest.mark.parametrize(
    'rows', sorted(glob.glob(osp.join(REPO_ROOT, 'configs', 'ifr', 'demo', 'rows_*.yml'))),
    ids=osp.basename)
def test_every_demo_rows_file_names_existing_configs(rows):
    # Loaded as a seed study loads them: a control row names one side.
    loaded = tool.load_rows(_args(rows=rows, seeds=[0]))
    assert loaded
    for row in loaded:
        sides = [side for side in tool.SIDES if side in row]
        assert sides == list(tool.SIDES) or row['name'].endswith('_gn_head'), row['name']
        for side in sides:
            assert osp.exists(osp.join(REPO_ROOT, row[side]['config'])), (row['name'], side)


def test_every_metafile_model_and_baseline_config_exists():
    meta = tool.load_metafile()
    assert 'bmask_rcnn_r50_ifr_1x' in meta
    for name, model in meta.items():
        for key in ('Config', 'Baseline Config'):
            assert osp.exists(tool.resolve_config(model[key])), (name, key)


def test_a_named_test_set_needs_its_overrides_and_a_seed_study(monkeypatch, capsys):
    base = ['benchmark_model_zoo.py', '--rows', 'rows.yml']
    for extra, message in (
        (['--seeds', '0', '--test-name', 'dev'], '--test-name and --test-cfg-options go together'),
        (['--seeds', '0', '--test-cfg-options', 'a=1'], 'go together'),
        (['--test-name', 'dev', '--test-cfg-options', 'a=1'], 'option of the seed study'),
        (['--seeds', '0', '--test-name', '../dev', '--test-cfg-options', 'a=1'],
         "--test-name '../dev': letters, digits"),
    ):
        monkeypatch.setattr(sys, 'argv', base + extra)
        with pytest.raises(SystemExit):
            tool.parse_args()
        assert message in capsys.readouterr().err


def test_unknown_model_and_bad_rows_are_rejected(tmp_path):
    with pytest.raises(ValueError, match='unknown'):
        tool.load_rows(_args(models=['no_such_model']))
    bad = tmp_path / 'rows.yml'
    bad.write_text(yaml.safe_dump({'rows': [{'name': 'x', 'baseline': {}, 'ifr': {},
                                             'metric': 'keypoints'}]}))
    with pytest.raises(ValueError, match="metric='keypoints'"):
        tool.load_rows(_args(rows=str(bad)))


def test_a_control_row_with_one_side_is_a_seed_study_row_only(tmp_path):
    rows = tmp_path / 'rows.yml'
    rows.write_text(yaml.safe_dump({'rows': [{'name': 'gn', 'baseline': {'config': 'a.py'}}]}))
    (row, ) = tool.load_rows(_args(rows=str(rows), seeds=[0]))
    assert 'ifr' not in row and row['metric'] == 'segm'
    with pytest.raises(ValueError,
                       match=r"row 'gn' names \['baseline'\]; it needs baseline and ifr"):
        tool.load_rows(_args(rows=str(rows)))
    rows.write_text(yaml.safe_dump({'rows': [{'name': 'none'}]}))
    with pytest.raises(ValueError, match="row 'none' names no model"):
        tool.load_rows(_args(rows=str(rows), seeds=[0]))


def test_youtube_vis_metrics_become_percent_aps_and_the_video_columns():
    metrics = {'youtube_vis/segm_mAP': 0.305, 'youtube_vis/segm_mAP_50': 0.513,
               'youtube_vis/segm_mAP_75': 0.322, 'youtube_vis/segm_AR@1': 0.31,
               'youtube_vis/segm_AR@10': 0.357, 'youtube_vis/segm_mAP_m': -1.0}
    aps = tool.coco_aps(metrics, 'youtube_vis')
    assert aps == {'AP': 30.5, 'AP50': 51.3, 'AP75': 32.2, 'AR1': 31.0, 'AR10': 35.7}
    side = dict(ap=aps)
    table = tool.markdown([dict(name='vis', metric='youtube_vis', baseline=side, ifr=side,
                                delta=dict(ap={k: 0.0 for k in aps}))], 'title')
    assert '| row | head | AP | AP50 | AP75 | AR1 | AR10 |' in table
    assert '| vis | stock | 30.5 | 51.3 | 32.2 | 31.0 | 35.7 |' in table
    rows = tool.load_rows(_args(models=['masktrack_rcnn_r50_ifr_1x']))
    assert rows[0]['metric'] == 'youtube_vis'


def test_markdown_has_both_heads_the_delta_and_the_paper():
    side = dict(ap=dict(AP=30.0, AP50=50.0), head_params=2_643_280, infer_ms=12.0)
    ifr = dict(ap=dict(AP=31.5, AP50=50.5), head_params=1_464_656, infer_ms=15.0,
               solver_steps=6.5)
    paper = tool.load_metafile()['mask_rcnn_r50_ifr_1x']['Paper Results']
    table = tool.markdown([
        dict(name='row', baseline=side, ifr=ifr, delta=dict(ap=dict(AP=1.5, AP50=0.5)),
             paper=paper)
    ], 'title')
    lines = table.splitlines()
    stock, ifr_line, delta = lines[4:7]
    assert '| row | stock | 30.0 | 50.0 |' in stock and '2.64' in stock
    assert '| IFR | 31.5 | 50.5 |' in ifr_line and '1.46' in ifr_line and '6.5' in ifr_line
    assert '+1.5' in delta and '35.1 -> 36.1 (+1.0) (T2)' in delta


def _tiny_pair(tmp_path, tool_runner):
    """A 4-image shapes set, a rows file with the demo pair on it, and the
    --cfg-options that train it for 2 iterations without pretrained weights."""
    data = tmp_path / 'shapes'
    tool_runner([
        sys.executable, 'tools/dataset_converters/make_shapes_dataset.py', '--out',
        str(data), '--num-train', '4', '--num-val', '2', '--size', '128'
    ], cwd=str(tmp_path))
    rows = tmp_path / 'rows.yml'
    rows.write_text(
        yaml.safe_dump({
            'rows': [{
                'name': 'tiny',
                'metric': 'segm',
                'paper': 'mask_rcnn_r50_ifr_1x',
                'baseline': {'config': DEMO.format('baseline')},
                'ifr': {'config': DEMO.format('ifr')},
            }]
        }))
    options = [f'{loader}.dataset.data_root={data}/'
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    options += [f'{ev}.ann_file={data}/annotations/instances_val.json'
                for ev in ('val_evaluator', 'test_evaluator')]
    options += [
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2',
        # No pretrained weights in a test; detections forced so AP is defined.
        'model.backbone.init_cfg=None', 'model.test_cfg.rcnn.score_thr=0.0'
    ]
    return rows, options


@pytest.mark.slow
def test_trains_evaluates_and_writes_the_table(tmp_path, tool_runner):
    rows, options = _tiny_pair(tmp_path, tool_runner)
    work_dir = tmp_path / 'zoo'
    tool_runner([
        sys.executable, 'tools/benchmark_model_zoo.py', '--rows',
        str(rows), '--train', '--work-dir',
        str(work_dir), '--num-timing-images', '1', '--cfg-options', *options
    ], cwd=str(tmp_path), timeout=900)

    (row, ) = json.loads((work_dir / 'model_zoo.json').read_text())
    for side in ('baseline', 'ifr'):
        assert osp.exists(row[side]['checkpoint'])
        # Size ranges without objects (COCO's -1) are left out.
        assert {'AP', 'AP50', 'AP75'} <= set(row[side]['ap']) <= set(tool.AP_KEYS)
        assert row[side]['infer_ms'] > 0
    assert row['ifr']['head_params'] < 0.6 * row['baseline']['head_params']
    assert row['ifr']['solver_steps'] >= 1
    assert 'solver_steps' not in row['baseline']
    assert row['delta']['ap']['AP'] == pytest.approx(
        row['ifr']['ap']['AP'] - row['baseline']['ap']['AP'], abs=0.051)
    table = (work_dir / 'model_zoo.md').read_text()
    assert 'IFR - stock' in table and '35.1 -> 36.1' in table


@pytest.mark.slow
def test_seed_study_trains_each_seed_and_aggregates(tmp_path, tool_runner):
    rows, options = _tiny_pair(tmp_path, tool_runner)
    work_dir = tmp_path / 'study'
    command = [
        sys.executable, 'tools/benchmark_model_zoo.py', '--rows',
        str(rows), '--seeds', '0', '1', '--work-dir',
        str(work_dir), '--cfg-options', *options
    ]
    tool_runner(command, cwd=str(tmp_path), timeout=1800)

    runs = json.loads((work_dir / 'seed_study.json').read_text())['runs']
    assert [(r['head'], r['seed']) for r in runs] == [('baseline', 0), ('baseline', 1),
                                                      ('ifr', 0), ('ifr', 1)]
    for run in runs:
        assert run['row'] == 'tiny' and run['iterations'] == 2
        assert run['config'] == DEMO.format(run['head'])
        assert 0 <= run['segm_AP'] <= 100 and 0 <= run['bbox_AP'] <= 100
        # Each seed trained its own model, with its own seed.
        assert f"seed{run['seed']}" in run['checkpoint'] and osp.exists(run['checkpoint'])
    weights = [
        torch.load(r['checkpoint'], map_location='cpu',
                   weights_only=False)['state_dict']['roi_head.mask_head.conv_logits.weight']
        for r in runs if r['head'] == 'ifr'
    ]
    assert not torch.equal(*weights)
    table = (work_dir / 'seed_study.md').read_text()
    mean = sum(r['segm_AP'] for r in runs if r['head'] == 'ifr') / 2
    assert f'|  | IFR | {mean:.1f} +- ' in table
    assert 'IFR - stock (paired by seed)' in table

    # A second test set scores the same runs: nothing is trained again, each
    # run is evaluated there, and the first test set's records stay as they were.
    other = tmp_path / 'shapes_other'
    tool_runner([
        sys.executable, 'tools/dataset_converters/make_shapes_dataset.py', '--out',
        str(other), '--num-train', '0', '--num-val', '2', '--size', '128', '--seed', '1'
    ], cwd=str(tmp_path))
    trained = {r['checkpoint']: osp.getmtime(r['checkpoint']) for r in runs}
    tool_runner(command + [
        '--test-name', 'other', '--test-cfg-options',
        f'test_dataloader.dataset.data_root={other}/',
        f'test_evaluator.ann_file={other}/annotations/instances_val.json'
    ], cwd=str(tmp_path), timeout=600)
    scored = json.loads((work_dir / 'seed_study_other.json').read_text())['runs']
    assert [(r['head'], r['seed'], r['checkpoint']) for r in scored] == [
        (r['head'], r['seed'], r['checkpoint']) for r in runs]
    assert {r['test_set'] for r in scored} == {'other'} and {r['test_set'] for r in runs} == {None}
    assert {c: osp.getmtime(c) for c in trained} == trained
    for run in scored:
        (dumped, ) = glob.glob(osp.join(osp.dirname(run['checkpoint']), 'test_other', '*.py'))
        cfg = Config.fromfile(dumped)
        assert cfg.test_dataloader.dataset.data_root == f'{other}/'
        assert cfg.train_dataloader.dataset.data_root == f"{tmp_path / 'shapes'}/"
    assert 'test set other' in (work_dir / 'seed_study_other.md').read_text()
    assert json.loads((work_dir / 'seed_study.json').read_text())['runs'] == runs

    # A rerun reuses the finished runs instead of training again, and a run
    # trained and evaluated before its record was written is not evaluated again.
    os.remove(osp.join(osp.dirname(runs[0]['checkpoint']), 'seed_run.json'))
    for run in runs[1:]:
        os.remove(run['checkpoint'])
    tool_runner(command, cwd=str(tmp_path), timeout=300)
    assert json.loads((work_dir / 'seed_study.json').read_text())['runs'] == runs
