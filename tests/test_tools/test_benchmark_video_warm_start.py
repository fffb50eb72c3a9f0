"""``tools/analysis_tools/benchmark_video_warm_start.py`` end to end on one tiny
generated clip, with random-weight checkpoints of the video demo pair written
here (the report's form and bookkeeping are under test, not the model)."""
import json
import os.path as osp

import pytest
import torch

from tool_runs import load_tool
from tools.lib.models import build_detector

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'ifr', 'demo')
CONFIGS = {side: osp.join(DEMO, f'masktrack-rcnn_mbv2_fpn_shapes-video_{side}.py')
           for side in ('baseline', 'ifr')}
FRAMES = 3

tool = load_tool('tools/analysis_tools/benchmark_video_warm_start.py')


@pytest.fixture(scope='module')
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp('warm_start')
    data = str(root / 'shapes_video')
    load_tool('tools/dataset_converters/make_shapes_video_dataset.py').main(
        ['--out', data, '--num-train', '1', '--num-val', '1', '--frames', str(FRAMES),
         '--size', '96'])
    options = {
        'test_dataloader.dataset.data_root': data + '/',
        'model.detector.backbone.init_cfg': None,
        # Random weights score low: keep every detection, so masks are solved.
        'model.detector.test_cfg.rcnn.score_thr': 0.0,
    }
    checkpoints = {}
    for side, config in CONFIGS.items():
        torch.manual_seed(0)
        model, _ = build_detector(config, options)
        checkpoints[side] = str(root / f'{side}.pth')
        torch.save(dict(state_dict=model.state_dict()), checkpoints[side])
    return root, options, checkpoints


@pytest.mark.slow
def test_every_setting_is_measured_against_the_cold_start_and_the_stock_model(pair):
    root, options, checkpoints = pair
    out = str(root / 'report')
    tool.main([
        '--config', CONFIGS['ifr'], '--checkpoint', checkpoints['ifr'], '--stock-config',
        CONFIGS['baseline'], '--stock-checkpoint', checkpoints['baseline'], '--budgets', '1', '2',
        '--calibration-videos', '1', '--out', out, '--cfg-options'
    ] + [f'{k}={"None" if v is None else v}' for k, v in options.items()])
    report = json.loads(open(out + '.json').read())
    assert report['settings'] == ['cold', 'warm', 'warm_budget1', 'warm_budget2', 'stock']
    settings = {name: report[name] for name in report['settings']}
    assert report['videos'] == 1 and report['machine']['threads'] == 1
    assert report['match_thr'] == 0.8  # the model's (the library default)
    assert report['options']['test_dataloader.dataset.data_root'] == options[
        'test_dataloader.dataset.data_root']
    for name, row in settings.items():
        assert row['frames'] == FRAMES
        assert set(row['vis_ap']) == {'AP', 'AP50', 'AP75', 'AR1', 'AR10'}
        assert row['ms_per_frame'] > 0
        assert row['ms_vs_stock'] == pytest.approx(
            row['ms_per_frame'] / settings['stock']['ms_per_frame'])
    assert settings['stock']['steps_per_frame'] is None
    cold = settings['cold']
    assert cold['steps_vs_cold'] == 1 and cold['vis_ap_vs_cold'] == 0
    # Frames 1 and 2 of a budget take 1 or 2 steps per matched RoI, fewer
    # than the cold solve's; frame 0 solves cold in every setting.
    assert settings['warm_budget1']['steps_per_frame'] < settings['warm_budget2'][
        'steps_per_frame'] < cold['steps_per_frame']
    assert cold['warm_start'] == dict(enabled=False)
    table = open(out + '.md').read()
    assert all(f'| {name} |' in table for name in settings)
    # The match distances, measured on the training clip.
    calibration = report['match_calibration']
    assert calibration['split'] == 'train' and calibration['samples'] > 0
    shares = [row['matched'] for row in calibration['thresholds']]
    assert shares == sorted(shares) and 0 <= shares[0] and shares[-1] <= 1
    for row in calibration['thresholds']:
        assert row['helps'] is None or 0 <= row['helps'] <= 1
    suggested = calibration['suggested_match_thr']
    assert suggested is None or next(
        r for r in calibration['thresholds'] if r['match_thr'] == suggested)['helps'] >= 0.99
    assert '| match_thr | matched |' in table


def test_bad_arguments_are_named(pair, capsys):
    root, _, checkpoints = pair
    common = ['--config', CONFIGS['ifr'], '--stock-config', CONFIGS['baseline'],
              '--stock-checkpoint', checkpoints['baseline']]
    for argv, message in [
        (['--checkpoint', str(root / 'missing.pth')], 'missing.pth does not exist'),
        (['--checkpoint', checkpoints['ifr'], '--budgets', '0'], 'must be positive, got [0]'),
        (['--checkpoint', checkpoints['ifr'], '--num-videos', '0'], 'got 0'),
        (['--checkpoint', checkpoints['ifr'], '--calibration-videos', '-1'], '0 or more, got -1'),
        (['--checkpoint', checkpoints['ifr'], '--match-thr', 'x'], 'positive number or'),
        (['--checkpoint', checkpoints['ifr'], '--match-thr', 'suggested', '--calibration-videos',
          '0'], 'needs the calibration'),
    ]:
        with pytest.raises(SystemExit):
            tool.parse_args(common + argv)
        assert message in capsys.readouterr().err
