"""Tests of the cost and analysis tools in ``tools/analysis_tools/``:
``benchmark_ifr_cost.py``, ``analyze_convergence.py`` and
``visualize_features.py``. The cost benchmark's measurements live in
:mod:`tools.lib.benchmark` (tested in ``tests/test_tools/test_lib/test_benchmark/``);
here its command line runs them.

The measurement functions are checked on blocks with known answers (a
contraction, an expansion, linear maps with a known spectral radius); the
command lines run end to end on a tiny Mask R-CNN (ResNet-18, 32 channels)
with checkpoints written here (random weights: the tools' outputs, not the
model's quality, are under test).
"""
import json
import math
import os.path as osp
import re

import pytest
import torch
from torch import nn

from mmifr.ops.solvers import SOLVERS
from tool_runs import load_tool
from tools.lib import models, progress, roi_features
from tools.lib.benchmark.ifr_cost_head import RESULT_PREFIX, forward_args


def _load_tool(name):
    return load_tool(f'tools/analysis_tools/{name}.py')


convergence = _load_tool('analyze_convergence')
features = _load_tool('visualize_features')
cost = _load_tool('benchmark_ifr_cost')
fit_initializer = _load_tool('fit_ifr_initializer')
probe = _load_tool('probe_mask_head')


def test_the_tools_share_one_loader_one_roi_extraction_one_log():
    for tool in (convergence, features, fit_initializer, probe):
        assert tool.build_detector is models.build_detector
        assert tool.quiet_mmengine is progress.quiet_mmengine
    for tool in (convergence, fit_initializer):
        assert tool.gt_roi_features is roi_features.gt_roi_features
    assert features.mask_roi_features is roi_features.mask_roi_features
    assert convergence.log is features.log is cost.log is progress.log


def _gen(seed):
    return torch.Generator().manual_seed(seed)


class ScaledConvBlock(nn.Module):
    """``F(h, x) = tanh(a * conv(h) + x)`` with ``conv`` of operator norm <= 1
    (so ``a < 1`` is a contraction), or, with ``linear=True``,
    ``F(h, x) = a * h + x`` (spectral radius exactly ``a``)."""

    def __init__(self, scale: float, channels: int = 3, linear: bool = False) -> None:
        super().__init__()
        self.scale, self.linear = scale, linear
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False, dtype=torch.float64)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=_gen(0),
                                               dtype=torch.float64))
            taps = self.conv.weight.permute(2, 3, 0, 1)
            self.conv.weight.div_(torch.linalg.matrix_norm(taps, 2).sum())

    def forward(self, h, x):
        if self.linear:
            return self.scale * h + x
        return torch.tanh(self.scale * self.conv(h) + x)


def _x(batch=4, channels=3, size=6, seed=1):
    return torch.randn(batch, channels, size, size, generator=_gen(seed), dtype=torch.float64)


# ------------------------------------------------------------- measurements


def test_fixed_point_trace_decreases_for_a_contraction():
    block, x = ScaledConvBlock(0.5), _x()
    trace, h = convergence.fixed_point_trace(block, x, 40)
    assert trace.shape == (40, x.shape[0])
    assert (trace[1:] <= trace[:-1] * (1 + 1e-9) + 1e-15).all()
    assert (trace[-1] < 1e-8).all()
    torch.testing.assert_close(block(h, x), h, rtol=1e-8, atol=1e-10)


def test_broyden_trace_reaches_the_solution_faster():
    block, x = ScaledConvBlock(0.9), _x()
    fp, _ = convergence.fixed_point_trace(block, x, 15)
    bt = convergence.broyden_trace(block, x, 15)
    assert bt.shape == (15, x.shape[0])
    assert torch.isfinite(bt).all()
    assert (bt[-1] < fp[-1]).all()


@pytest.mark.parametrize('scale', [0.3, 0.7])
def test_spectral_radius_below_one_for_a_contraction(scale):
    block, x = ScaledConvBlock(scale), _x()
    _, h = convergence.fixed_point_trace(block, x, 60)
    rho = convergence.spectral_radius(block, h, x, iters=60)
    assert rho.shape == (x.shape[0], )
    assert (rho < 1).all() and (rho <= scale + 1e-6).all(), rho


@pytest.mark.parametrize('scale', [1.5, 3.0])
def test_spectral_radius_above_one_for_an_expansion(scale):
    block, x = ScaledConvBlock(scale, linear=True), _x()
    rho = convergence.spectral_radius(block, torch.zeros_like(x), x, iters=20)
    torch.testing.assert_close(rho, torch.full_like(rho, scale), rtol=1e-6, atol=1e-6)
    # A non-linear expansive block: tanh(3 conv(h)) near h = 0 has gain ~3.
    block = ScaledConvBlock(3.0)
    rho = convergence.spectral_radius(block, torch.zeros_like(x), 0 * x, iters=60)
    assert (rho > 1).all(), rho


def test_spectral_radius_of_a_rotation_is_its_modulus():
    # Complex-conjugate dominant eigenvalues (0.8 e^{+-i 0.7}): a single power
    # step's ratio oscillates, the geometric mean does not.
    theta = 0.7
    rot = 0.8 * torch.tensor([[math.cos(theta), -math.sin(theta)],
                              [math.sin(theta), math.cos(theta)]], dtype=torch.float64)
    a = torch.block_diag(rot, torch.diag(torch.tensor([0.5, -0.3], dtype=torch.float64)))

    def block(h, x):
        return h @ a.T + x

    x = torch.randn(3, 4, generator=_gen(2), dtype=torch.float64)
    rho = convergence.spectral_radius(block, torch.zeros_like(x), x, iters=200)
    torch.testing.assert_close(rho, torch.full_like(rho, 0.8), rtol=2e-2, atol=0)


def test_analyze_block_report_for_a_contraction():
    block, x = ScaledConvBlock(0.5), _x()
    from mmifr.ops import deq_fixed_point
    with torch.no_grad():
        h_deq, _ = deq_fixed_point(block, x, max_iter=30, tol=1e-10)
    args = convergence.parse_args(['cfg', 'ckpt', '--fp-steps', '80', '--broyden-steps', '20',
                                   '--power-iters', '30'])
    report = convergence.analyze_block(block, x, h_deq, args)
    traces = report.pop('_traces')
    assert set(traces) == {'fixed_point', 'broyden', 'rho'}
    assert report['spectral_radius_at_deq']['max'] < 1
    diff = report['deq_vs_unrolled']
    assert diff['rel_l2']['max'] < convergence.E_MINUS_8
    assert diff['fraction_rel_below_e_minus_8'] == 1.0
    assert len(report['fixed_point']['rel_residual']['median']) == 80
    json.dumps(report)  # serialisable


def test_memory_worker_command_line_round_trip(capsys):
    # The memory subprocess is this tool again: the flags the section forwards
    # must rebuild the same head problem and reach the worker.
    args = cost.parse_args(['--sections', 'head', '--channels', '8', '--roi-size', '4',
                            '--num-classes', '3', '--num-rois', '5', '--train-rois', '4',
                            '--seed', '7', '--threads', str(torch.get_num_threads())])
    argv = forward_args(args, {'--memory-worker': 'stock'})
    worker = cost.parse_args(argv)
    for key in ('threads', 'seed', 'num_rois', 'train_rois', 'channels', 'roi_size',
                'num_classes', 'head_config', 'head_checkpoint', 'head_images'):
        assert getattr(worker, key) == getattr(args, key), key
    assert worker.memory_worker == 'stock'
    registered = 'broyden_v0' in SOLVERS
    try:
        cost.main(argv)
    finally:
        if not registered:  # the worker registers it; other tests list the solvers
            SOLVERS.pop('broyden_v0', None)
    out = capsys.readouterr().out.splitlines()
    (line, ) = [ln for ln in out if ln.startswith(RESULT_PREFIX)]
    assert isinstance(json.loads(line[len(RESULT_PREFIX):])['peak_rss_increase'], int)


def test_feature_rendering_modes():
    feat = torch.randn(8, 5, 5, generator=_gen(3))
    for mode in features.MODES:
        img = features.render(feat, mode)
        assert img.shape == ((5, 5, 3) if mode == 'pca' else (5, 5))
        assert img.min() >= 0 and img.max() <= 1 + 1e-9


# ---------------------------------------------------- command lines, tiny model

IFR_CONFIG = """\
_base_ = './tiny_mask_rcnn.py'
model = dict(roi_head=dict(mask_head=dict(type='IFRConvFCMaskHead')))
"""


@pytest.fixture(scope='module')
def tiny(tmp_path_factory, tiny_coco_factory, tiny_config_writer):
    """Tiny dataset, stock + IFR configs and random-weight checkpoints."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmdet.registry import MODELS
    root = tmp_path_factory.mktemp('analysis_tools')
    data = tiny_coco_factory(str(root / 'data'), num_images=3, size=(64, 80), max_objects=3)
    base = tiny_config_writer(str(root / 'tiny_mask_rcnn.py'), data)
    ifr = root / 'tiny_mask_rcnn_ifr.py'
    ifr.write_text(IFR_CONFIG)
    out = dict(data=data, root=root, baseline_config=base, ifr_config=str(ifr))
    for side, path in (('baseline', base), ('ifr', str(ifr))):
        cfg = Config.fromfile(path)
        init_default_scope('mmdet')
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        model.init_weights()
        ckpt = root / f'{side}.pth'
        torch.save(dict(state_dict=model.state_dict(),
                        meta=dict(dataset_meta=dict(classes=data['classes']))), str(ckpt))
        out[f'{side}_checkpoint'] = str(ckpt)
    return out


@pytest.mark.slow
def test_analyze_convergence_cli(tiny, tmp_path):
    out_dir = tmp_path / 'conv'
    report = convergence.main([
        tiny['ifr_config'], tiny['ifr_checkpoint'], '--out-dir', str(out_dir), '--num-images',
        '3', '--max-rois', '4', '--fp-steps', '12', '--broyden-steps', '6', '--power-iters', '8'
    ])
    assert (out_dir / 'convergence.png').stat().st_size > 10_000
    saved = json.loads((out_dir / 'convergence.json').read_text())
    for key in ('config', 'checkpoint', 'refiner', 'solver', 'rois', 'analysis'):
        assert key in saved, key
    analysis = saved['analysis']
    for key in ('fixed_point', 'broyden', 'spectral_radius_at_deq', 'deq_vs_unrolled',
                'inference_solve'):
        assert key in analysis, key
    n = analysis['num_rois']
    assert 1 <= n <= 4 and len(saved['rois']) == n
    assert len(analysis['spectral_radius_per_roi']) == n
    assert len(analysis['fixed_point']['rel_residual']['median']) == 12
    assert report['refiner'].startswith('roi_head.mask_head')


@pytest.mark.slow
@pytest.mark.parametrize('side', ['baseline', 'ifr'])
def test_probe_mask_head_cli(tiny, tmp_path, side):
    out = tmp_path / 'probe.json'
    result = probe.main([
        tiny[f'{side}_config'], tiny[f'{side}_checkpoint'], '--max-images', '3', '--out',
        str(out)
    ])
    assert json.loads(out.read_text()) == result
    for split in ('train', 'val'):
        quality = result[split]
        assert quality['num_rois'] > 0
        assert 0 <= quality['mask_iou'] <= 1 and quality['loss'] > 0
    response = result['response']
    assert response['sensitivity'] > 0 and response['locality'] > 0
    assert result['head'] == ('IFRConvFCMaskHead' if side == 'ifr' else 'FCNMaskHead')
    # The solve's steps are reported for an IFR head only.
    assert ('steps_to_tol_1e-3' in response) == (side == 'ifr')
    if side == 'ifr':
        assert 1 <= response['steps_to_tol_1e-3'] <= 40


@pytest.mark.slow
def test_probe_mask_head_init_head_takes_another_heads_checkpoint(tiny):
    """``--init-head``: a fresh head on the features of a checkpoint, which may
    hold another head (here: a fresh IFR head on a stock model)."""
    result = probe.main([
        tiny['ifr_config'], tiny['baseline_checkpoint'], '--init-head', '--splits', 'val',
        '--max-images', '2'
    ])
    assert result['init_head'] and 'train' not in result and result['val']['num_rois'] > 0
    args = [tiny['baseline_config'], tiny['baseline_checkpoint'], '--splits', 'val',
            '--max-images', '2']
    trained, fresh = probe.main(args), probe.main(args + ['--init-head'])
    assert trained['response'] != fresh['response']


@pytest.mark.slow
@pytest.mark.parametrize('mode', ['norm', 'pca'])
def test_visualize_features_cli(tiny, tmp_path, mode):
    out = tmp_path / 'features.png'
    img_dir = tiny['data']['img_dir']
    images = [osp.join(img_dir, f'{i:06d}.png') for i in (1, 2)]
    meta = features.main([
        '--baseline-config', tiny['baseline_config'], '--baseline-checkpoint',
        tiny['baseline_checkpoint'], '--ifr-config', tiny['ifr_config'], '--ifr-checkpoint',
        tiny['ifr_checkpoint'], '--images', *images, '--ann-file', tiny['data']['ann_path'],
        '--objects-per-image', '2', '--mode', mode, '--out', str(out)
    ])
    assert out.stat().st_size > 5_000
    assert 2 <= len(meta) <= 4
    saved = json.loads(out.with_suffix('.json').read_text())
    assert saved['mode'] == mode and len(saved['objects']) == len(meta)


@pytest.mark.parametrize('argv, message', [
    (['--device', 'cuda', '--sections', 'head', 'e2e'], r"measures \['e2e', 'syncs'\] only, "
     r"not \['head'\]"),
    (['--device', 'tpu'], "--device 'tpu' is not a torch device|--device 'tpu': cpu or cuda"),
    (['--e2e-size', '160x128'], '--e2e-size is the size of generated images'),
    (['--e2e-data', 'shapes', '--e2e-size', '160'], "'160' is not WxH"),
])
def test_benchmark_device_and_data_options_are_checked(argv, message, capsys):
    # (The section check of --device cuda comes before the check for a GPU.)
    with pytest.raises(SystemExit):
        cost.parse_args(argv)
    assert re.search(message, capsys.readouterr().err)


def test_benchmark_shapes_data_and_device_parse():
    args = cost.parse_args(['--sections', 'e2e', 'syncs', '--e2e-data', 'shapes', '--e2e-size',
                            '160x128', '--sync-rois', '8'])
    assert args.device == 'cpu' and args.e2e_size == (160, 128) and args.sync_rois == 8


@pytest.mark.slow
def test_benchmark_head_section(tmp_path):
    out_dir = tmp_path / 'bench'
    cost.main([
        '--sections', 'head', '--out-dir', str(out_dir), '--channels', '16', '--roi-size', '6',
        '--num-classes', '3', '--num-rois', '6', '--train-rois', '6', '--repeats', '1',
        '--head-rows', 'released', 'paper', 'chunk32', 'tol3e-2_fz'
    ])
    report = json.loads((out_dir / 'ifr_cost.json').read_text())
    rows = report['head']['rows']
    assert list(rows) == ['stock', 'released', 'paper', 'chunk32', 'tol3e-2_fz']
    for key in ('stock', 'released', 'paper', 'chunk32'):
        for metric in ('infer_s', 'train_s', 'train_peak_mib', 'infer_ratio', 'train_ratio'):
            assert metric in rows[key], (key, metric)
        # A tiny stock step can leave the peak RSS where it was (page
        # granularity): no ratio against a zero baseline, never a division
        # by zero.
        stock_peak = rows['stock']['train_peak_mib']
        assert ('train_peak_ratio' in rows[key]) == (stock_peak > 0), key
        if stock_peak > 0:
            assert rows[key]['train_peak_ratio'] == pytest.approx(
                rows[key]['train_peak_mib'] / stock_peak)
    assert rows['stock']['infer_ratio'] == 1.0
    assert 'train_s' not in rows['tol3e-2_fz']  # an inference-only row
    assert rows['tol3e-2_fz']['refiner']['test_solver'] == dict(tol=3e-2, output='fz')
    for key in ('released', 'paper', 'chunk32'):
        assert rows[key]['train_steps']['bwd_steps'] >= 1
    # The same solve in chunks, or with the solver code as released, takes
    # the same steps.
    assert rows['paper']['infer_steps']['fwd_steps'] == rows['chunk32']['infer_steps'][
        'fwd_steps'] == rows['released']['infer_steps']['fwd_steps']
    assert '## Mask head alone' in (out_dir / 'ifr_cost.md').read_text()


@pytest.mark.slow
def test_benchmark_e2e_and_accuracy_sections(tiny, tmp_path):
    out_dir = tmp_path / 'bench'
    cost.main([
        '--sections', 'e2e', 'accuracy', '--out-dir', str(out_dir), '--repeats', '1',
        '--e2e-models', '--e2e-custom', tiny['baseline_config'], tiny['ifr_config'],
        '--e2e-images', '2', '--e2e-dets', '5', '--config', tiny['ifr_config'], '--checkpoint',
        tiny['ifr_checkpoint'], '--baseline-config', tiny['baseline_config'],
        '--baseline-checkpoint', tiny['baseline_checkpoint'], '--max-iters', '1', '3', '--tols',
        '1e-1', '--outputs', 'z', 'fz', '--e2e-train-solvers', '{"jfb": {"grad": "phantom"}}',
        '--e2e-refiner-from', tiny['ifr_checkpoint']
    ])
    report = json.loads((out_dir / 'ifr_cost.json').read_text())
    assert tiny['ifr_checkpoint'] in report['e2e']['custom']['weights']
    e2e = report['e2e']['custom']['rows']
    jfb = e2e.pop('ifr, training solve=jfb')
    # A training-only row: the phantom gradient has no adjoint solve.
    assert 'infer_s_per_img' not in jfb and jfb['train_step_s'] > 0 and 'train_ratio' in jfb
    assert 'bwd_steps' not in jfb['train_solver'] and 'bwd_steps' in e2e['ifr']['train_solver']
    assert set(e2e) == {'stock', 'ifr'}
    for row in e2e.values():
        for key in ('infer_s_per_img', 'mask_head_s_per_img', 'train_step_s', 'infer_ratio',
                    'train_ratio', 'dets_per_image', 'pos_rois'):
            assert key in row, key
        # score_thr=0 forces the requested number of detections.
        assert row['dets_per_image'] == 5
    assert e2e['ifr']['infer_solver']['fwd_steps'] >= 1
    acc = report['accuracy']
    settings = [r['setting'] for r in acc['rows']]
    # max_iter in {1, 3} at tol 1e-3, tol 1e-1 at max_iter 15, for both
    # outputs, and the mask heads' default inference solve.
    assert len([s for s in settings if 'project default' not in s]) == 6
    assert any('project default' in s for s in settings)
    for row in acc['rows']:
        for key in ('segm_mAP', 'bbox_mAP', 'solver_steps_mean', 'mask_branch_s_per_img',
                    'total_s_per_img'):
            assert key in row, key
        assert row['solver_steps_max'] <= row['test_solver'].get('max_iter', 15)
    assert 'segm_mAP' in acc['baseline']
    md = (out_dir / 'ifr_cost.md').read_text()
    assert 'Whole Mask R-CNN: custom' in md and 'paper Table 7 redone' in md
    # The target table: one row per measured IFR ratio of the custom pair.
    targets = {(r['target'], r['setting']): r for r in report['targets']}
    assert set(targets) == {('inference', 'ifr'), ('training', 'ifr'),
                            ('training', 'ifr, training solve=jfb')}
    assert targets['inference', 'ifr']['ratio'] == e2e['ifr']['infer_ratio']
    assert targets['inference', 'ifr']['default']
    assert '## Targets (ratio IFR / stock)' in md


@pytest.mark.slow
def test_fit_ifr_initializer_cli(tiny, tmp_path):
    out = tmp_path / 'fit.json'
    fit_initializer.main([
        tiny['ifr_config'], tiny['ifr_checkpoint'], '--train-images', '3', '--val-images', '2',
        '--iters', '5', '--mid-channels', '8', '--out', str(out)
    ])
    result = json.loads(out.read_text())
    assert result['train_rois'] > 0 and result['val_rois'] > 0
    assert result['fit']['params'] > 0 and math.isfinite(result['fit']['last_loss'])
    for solve in ('inference', 'training'):
        r = result[solve]
        assert r['steps_zero_start'] >= 1 and r['steps_learned_start'] >= 1
        assert r['fixed_point_rel_diff'] < 0.1


def test_fit_ifr_initializer_bad_config_names_the_head(tiny):
    with pytest.raises(ValueError, match=r'its mask head has no IFRRefiner \(found ConvModule\)'):
        fit_initializer.main([tiny['baseline_config'], tiny['baseline_checkpoint']])
