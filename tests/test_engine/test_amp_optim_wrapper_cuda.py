"""Mixed precision on CUDA: ``DeviceAmpOptimWrapper`` (mmengine's ``AmpOptimWrapper`` there)
training an IFR refiner in fp16 and bf16, and autocast gradients of the DEQ op against fp32.
"""
import math

import pytest
import torch
from mmengine.optim import AmpOptimWrapper
from mmengine.registry import init_default_scope
from torch import nn

from mmdet.registry import OPTIM_WRAPPERS
from mmifr.models.layers import IFRRefiner

pytestmark = pytest.mark.cuda

DTYPES = {'float16': torch.float16, 'bfloat16': torch.bfloat16}


class TinyIFRNet(nn.Module):
    """conv stem -> IFR refiner (DEQ, implicit backward) -> 1x1 conv head."""

    def __init__(self, channels=16):
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.refiner = IFRRefiner(
            in_channels=channels,
            channels=channels,
            solver=dict(solver='broyden', max_iter=8, backward_max_iter=8))
        self.head = nn.Conv2d(channels, 1, 1)

    def forward(self, img):
        return self.head(self.refiner(self.stem(img)))


def _model(device):
    torch.manual_seed(0)
    model = TinyIFRNet()
    model.refiner.init_weights()
    return model.to(device)


@pytest.mark.parametrize('dtype', list(DTYPES))
def test_wrapper_trains_an_ifr_model_on_cuda(real_cuda, dtype):
    model = _model(real_cuda)
    init_default_scope('mmdet')
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    wrapper = OPTIM_WRAPPERS.build(
        dict(type='DeviceAmpOptimWrapper', optimizer=optimizer, dtype=dtype))
    # On CUDA it is mmengine's wrapper: autocast and a dynamic loss scaler.
    assert isinstance(wrapper, AmpOptimWrapper) and wrapper.device_type == 'cuda'
    assert wrapper.cast_dtype == DTYPES[dtype] and wrapper.loss_scaler is not None
    conv_dtypes = set()
    for conv in (model.stem, model.refiner.block.conv1, model.refiner.block.conv2):
        conv.register_forward_hook(lambda m, i, o: conv_dtypes.add(o.dtype))
    torch.manual_seed(1)
    img = torch.randn(4, 3, 20, 20, device=real_cuda)
    target = torch.rand(4, 1, 20, 20, device=real_cuda)
    before = [p.detach().clone() for p in model.parameters()]
    losses = []
    for _ in range(6):
        with wrapper.optim_context(model):
            loss = nn.functional.binary_cross_entropy_with_logits(model(img).float(), target)
        wrapper.update_params(loss)
        losses.append(loss.item())
        stats = model.refiner.deq.last_stats
        # The block ran in the autocast dtype, inside the solves too; both
        # solvers kept fp32 state, and the implicit backward ran.
        assert stats.forward.abs_residual.dtype == torch.float32
        assert stats.backward is not None and stats.backward.abs_residual.dtype == torch.float32
    assert conv_dtypes == {DTYPES[dtype]}
    # (The dynamic loss scaler may skip a first step that overflowed fp16.)
    assert all(math.isfinite(v) for v in losses) and min(losses[2:]) < losses[0], losses
    for p, p0 in zip(model.parameters(), before):
        assert p.dtype == torch.float32 and bool(torch.isfinite(p).all())
    assert any(not torch.equal(p, p0) for p, p0 in zip(model.parameters(), before))
    assert 'loss_scaler' in wrapper.state_dict()


@pytest.mark.parametrize('dtype', list(DTYPES))
def test_autocast_gradients_follow_the_fp32_gradients(cuda_device, exact_cuda_math, dtype):
    """Autocast changes the rounding of the block, not what the implicit backward computes."""
    if cuda_device.type == 'cpu' and dtype == 'float16':
        pytest.skip('fp16 autocast is the CUDA path')
    torch.manual_seed(1)
    img = torch.randn(4, 3, 20, 20, device=cuda_device)

    def grads(autocast: bool):
        model = _model(cuda_device)
        with torch.autocast(cuda_device.type, dtype=DTYPES[dtype], enabled=autocast):
            out = model(img)
        out.float().square().mean().backward()
        assert model.refiner.deq.last_stats.backward is not None
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    full, mixed = grads(False), grads(True)
    assert bool(torch.isfinite(mixed).all())
    cosine = float(torch.nn.functional.cosine_similarity(full, mixed, dim=0))
    assert cosine > 0.99, cosine
