"""``DeviceAmpOptimWrapper``: mixed precision on the model's device, CPU included.

On CPU: bf16 autocast, no loss scaling, the IFR solver state in fp32 and the
convs in bf16; mmcv's fp32-only CPU ops still work. ``tools/train.py --amp``
picks the wrapper when CUDA is unavailable.
"""
import json
import math
import sys

import pytest
import torch
from mmengine.optim import AmpOptimWrapper
from mmengine.registry import init_default_scope
from torch import nn

from mmdet.registry import OPTIM_WRAPPERS
from mmifr.engine.optimizers import DeviceAmpOptimWrapper
from mmifr.engine.optimizers import amp_optim_wrapper as amp_module
from mmifr.models.layers import IFRRefiner
from mmifr.ops import deq as deq_module


class TinyIFRNet(nn.Module):
    """conv stem -> IFR refiner (DEQ) -> 1x1 conv head."""

    def __init__(self, channels=8):
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.refiner = IFRRefiner(
            in_channels=channels,
            channels=channels,
            solver=dict(solver='broyden', max_iter=6, backward_max_iter=6))
        self.head = nn.Conv2d(channels, 1, 1)

    def forward(self, img):
        return self.head(self.refiner(self.stem(img)))


def _build(model, **kwargs):
    init_default_scope('mmdet')
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return OPTIM_WRAPPERS.build(dict(type='DeviceAmpOptimWrapper', optimizer=optimizer, **kwargs))


def test_cpu_wrapper_is_registered_and_needs_no_scaler():
    wrapper = _build(nn.Conv2d(1, 1, 1))
    assert isinstance(wrapper, DeviceAmpOptimWrapper)
    assert isinstance(wrapper, AmpOptimWrapper)  # drop-in for mmengine's
    assert wrapper.device_type == 'cpu'
    assert wrapper.cast_dtype == torch.bfloat16
    assert wrapper.loss_scaler is None
    # Explicit bf16 is accepted, as a string or a dtype.
    assert _build(nn.Conv2d(1, 1, 1), dtype='bfloat16').cast_dtype == torch.bfloat16
    assert _build(nn.Conv2d(1, 1, 1), dtype=torch.bfloat16).cast_dtype == torch.bfloat16


def test_cpu_rejects_float16():
    with pytest.raises(ValueError, match=r"dtype='float16'.*allowed values: \['bfloat16'\]"):
        _build(nn.Conv2d(1, 1, 1), dtype='float16')


def test_non_cpu_defers_to_mmengine_amp():
    """Off CPU the wrapper is mmengine's AmpOptimWrapper (fp16 + loss scaler)."""
    if torch.cuda.is_available():
        model = nn.Conv2d(1, 1, 1).cuda()
        wrapper = _build(model)
        assert wrapper.device_type == 'cuda'
        assert wrapper.loss_scaler is not None
        assert 'loss_scaler' in wrapper.state_dict()
    else:
        # Same GPU check as mmengine's wrapper, i.e. its __init__ ran.
        with pytest.raises(AssertionError, match='only available training on gpu'):
            _build(nn.Conv2d(1, 1, 1), device_type='cuda')


def test_tiny_ifr_model_trains_in_bf16_with_fp32_solver_state(monkeypatch):
    torch.manual_seed(0)
    model = TinyIFRNet()
    wrapper = _build(model)

    conv_dtypes = []
    for conv in (model.stem, model.refiner.block.conv1, model.refiner.block.conv2):
        conv.register_forward_hook(lambda m, i, o: conv_dtypes.append(o.dtype))
    solver_calls = []
    get_solver = deq_module.get_solver

    def recording_get_solver(name):
        solver = get_solver(name)

        def wrapped(func, z0, **kwargs):
            solver_calls.append((z0.dtype, torch.is_autocast_enabled('cpu')))
            return solver(func, z0, **kwargs)

        return wrapped

    monkeypatch.setattr(deq_module, 'get_solver', recording_get_solver)

    img = torch.randn(2, 3, 12, 12)
    target = torch.rand(2, 1, 12, 12)
    before = [p.detach().clone() for p in model.parameters()]
    losses = []
    for _ in range(3):
        with wrapper.optim_context(model):
            pred = model(img)
            loss = nn.functional.binary_cross_entropy_with_logits(pred.float(), target)
        wrapper.update_params(loss)
        losses.append(loss.item())
        stats = model.refiner.deq.last_stats
        # Solver state (iterates, history, residuals) in fp32, both solves.
        assert stats.forward.abs_residual.dtype == torch.float32
        assert stats.backward is not None
        assert stats.backward.abs_residual.dtype == torch.float32
    assert all(math.isfinite(v) for v in losses)
    assert pred.dtype == torch.bfloat16  # the head conv ran under autocast
    # Convs (stem and the IFR block, inside the solve too) ran in bf16 ...
    assert conv_dtypes and set(conv_dtypes) == {torch.bfloat16}
    # ... while both solvers (forward and adjoint) kept fp32 state with autocast off.
    assert len(solver_calls) == 6
    assert set(solver_calls) == {(torch.float32, False)}
    # Master weights stay fp32, and were updated.
    for p, p0 in zip(model.parameters(), before):
        assert p.dtype == torch.float32
    assert any(not torch.equal(p, p0) for p, p0 in zip(model.parameters(), before))


def test_state_dict_round_trip_and_gpu_checkpoint_on_cpu():
    model = nn.Linear(2, 1)
    wrapper = _build(model)
    with wrapper.optim_context(model):
        loss = model(torch.randn(4, 2)).float().square().mean()
    wrapper.update_params(loss)
    state = wrapper.state_dict()
    assert 'loss_scaler' not in state
    other = _build(nn.Linear(2, 1))
    # A checkpoint of a GPU AMP run has a loss scaler entry: ignored on CPU.
    other.load_state_dict(dict(state, loss_scaler=dict(scale=1024.0)))
    assert other.state_dict()['state'].keys() == state['state'].keys()


def test_mmcv_cpu_ops_accept_bf16():
    from mmcv.ops import nms, roi_align
    _build(nn.Conv2d(1, 1, 1))  # installs the fp32 fallback of mmcv's ops
    torch.manual_seed(0)
    xy = torch.rand(20, 2) * 50
    boxes = torch.cat([xy, xy + 5 + torch.rand(20, 2) * 20], dim=1)
    scores = torch.rand(20)
    _, keep32 = nms(boxes, scores, 0.5)
    _, keep16 = nms(boxes.bfloat16(), scores.bfloat16(), 0.5)
    assert keep16.numel() > 0

    feats = torch.randn(1, 4, 16, 16)
    rois = torch.tensor([[0, 1.0, 1.0, 9.0, 9.0], [0, 4.0, 2.0, 15.0, 12.0]])
    ref = roi_align(feats, rois, (3, 3), 1.0, 2, 'avg', True)
    feats16 = feats.bfloat16().requires_grad_()
    out = roi_align(feats16, rois.bfloat16(), (3, 3), 1.0, 2, 'avg', True)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=0.05, rtol=0.05)
    out.float().sum().backward()
    assert feats16.grad.dtype == torch.bfloat16 and feats16.grad.abs().sum() > 0
    # Calls without bf16 CPU tensors reach the original op untouched.
    assert amp_module.upcast_mmcv_cpu_ops()
    torch.testing.assert_close(roi_align(feats, rois, (3, 3), 1.0, 2, 'avg', True), ref)


@pytest.mark.slow
def test_train_tool_amp_on_cpu(tmp_path, tiny_coco_factory, ifr_config_writer, engine_probe_module,
                               tool_runner):
    """``tools/train.py --amp`` without CUDA: the tiny IFR Mask R-CNN trains in
    bf16 (unrolled, then DEQ) with fp32 solver state and finite losses."""
    if torch.cuda.is_available():
        pytest.skip('checks the CPU path of --amp')
    dataset = tiny_coco_factory(str(tmp_path / 'data'))
    probe_file = tmp_path / 'amp_probe.json'
    config = ifr_config_writer(
        str(tmp_path / 'amp.py'),
        dataset,
        max_iters=3,
        ckpt_interval=3,
        switch_iter=1,
        imports=[engine_probe_module],
        hooks=[dict(type='AmpProbeHook', out_file=str(probe_file))])
    tool_runner(
        [sys.executable, 'tools/train.py', config, '--amp', '--work-dir',
         str(tmp_path / 'wd')],
        cwd=str(tmp_path))
    with open(probe_file) as f:
        records = json.load(f)
    assert [r['iter'] for r in records] == [1, 2, 3]
    assert [r['mode'] for r in records] == ['unroll', 'deq', 'deq']
    for r in records:
        assert r['optim_wrapper'] == 'DeviceAmpOptimWrapper'
        assert math.isfinite(r['loss'])
        assert r['conv_dtypes'] == ['torch.bfloat16']
    for r in records[1:]:
        assert r['fwd_state_dtype'] == r['bwd_state_dtype'] == 'torch.float32'
