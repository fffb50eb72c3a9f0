"""Call each mmcv op mmdet and mmifr use once on a device, against the CPU.

Run right after mmcv is built on the GPU machine (``run_gpu_checks.py``): a
kernel that the pruned build lost (``tools/device/prune_mmcv_ops.py``) or that
does not run on this GPU shows here in seconds, by name, before the test
suite starts. Each check runs the op on ``--device`` and on the CPU (or a
pure-PyTorch reference where mmcv has no CPU kernel) with the same inputs and
compares; backward too where mmdet trains through the op. Prints one line per
op and a JSON summary. Exits 1 if an op raised (a missing or broken kernel);
a result that differs from its reference is reported as ``mismatch`` without
failing the run, since the references are this file's, not mmcv's.

Example::

    python tools/device/mmcv_ops_smoke.py --device cuda
"""
import argparse
import copy
import json
import sys
import traceback
from typing import Callable, Dict

import torch


def _boxes(n: int, size: float = 60.0, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=gen) * size
    return torch.cat([xy, xy + 4 + torch.rand(n, 2, generator=gen) * size / 2], dim=1)


class NoCPUKernel(Exception):
    """The op has no CPU kernel: nothing to run where the device is the CPU."""


def _cuda_only(device):
    if device.type == 'cpu':
        raise NoCPUKernel


def _close(a, b, tol=1e-4):
    torch.testing.assert_close(a.detach().cpu().float(), b.detach().cpu().float(), rtol=tol,
                               atol=tol)


def _forward_backward(fn: Callable, inputs, device, reference: Callable = None):
    """``fn`` on ``device`` against ``reference`` (default: ``fn``) on the CPU.

    Compares the outputs and the gradients of the inputs that require them.
    """
    results = []
    for dev, func in ((device, fn), (torch.device('cpu'), reference or fn)):
        args = [x.detach().to(dev).requires_grad_(x.requires_grad) for x in inputs]
        out = func(dev, *args)
        grads = []
        if any(x.requires_grad for x in args):
            gen = torch.Generator().manual_seed(1)
            weight = torch.randn(out.shape, generator=gen).to(dev)
            grads = torch.autograd.grad((out * weight).sum(), [x for x in args if x.requires_grad])
        results.append((out, grads))
    (out_d, grads_d), (out_c, grads_c) = results
    _close(out_d, out_c)
    for g_d, g_c in zip(grads_d, grads_c):
        _close(g_d, g_c, 1e-3)


def check_nms(device):
    from mmcv.ops import batched_nms, nms, soft_nms
    boxes, scores = _boxes(200), torch.rand(200, generator=torch.Generator().manual_seed(2))
    _, keep_d = nms(boxes.to(device), scores.to(device), 0.5)
    _, keep_c = nms(boxes, scores, 0.5)
    assert keep_d.cpu().tolist() == keep_c.tolist()
    idxs = torch.arange(200) % 3
    dets_d, _ = batched_nms(boxes.to(device), scores.to(device), idxs.to(device),
                            dict(type='nms', iou_threshold=0.5))
    dets_c, _ = batched_nms(boxes, scores, idxs, dict(type='nms', iou_threshold=0.5))
    _close(dets_d, dets_c)
    soft_nms(boxes.to(device), scores.to(device), 0.5)


def check_roi_align(device):
    from mmcv.ops import roi_align
    feats = torch.randn(2, 8, 32, 32, requires_grad=True)
    rois = torch.cat([torch.tensor([[0.], [1.], [1.]]), _boxes(3, 24)], dim=1)
    _forward_backward(lambda d, f, r: roi_align(f, r, (7, 7), 1.0, 2, 'avg', True),
                      [feats, rois], device)


def _roi_pool_reference(feats, rois, size):
    """mmcv's RoIPool kernel (``x2 + 1`` ends, floor / ceil bins, empty bins 0), in fp32."""
    out = feats.new_zeros(len(rois), feats.shape[1], size, size)
    height, width = feats.shape[2:]
    for k, roi in enumerate(rois.float()):
        x1, y1, x2, y2 = roi[1], roi[2], roi[3] + 1, roi[4] + 1
        bin_w, bin_h = (x2 - x1) / size, (y2 - y1) / size
        for i in range(size):
            for j in range(size):
                h0 = int((i * bin_h + y1).floor().clamp(0, height))
                h1 = int(((i + 1) * bin_h + y1).ceil().clamp(0, height))
                w0 = int((j * bin_w + x1).floor().clamp(0, width))
                w1 = int(((j + 1) * bin_w + x1).ceil().clamp(0, width))
                if h1 > h0 and w1 > w0:
                    out[k, :, i, j] = feats[int(roi[0]), :, h0:h1, w0:w1].amax(dim=(1, 2))
    return out


def check_roi_pool(device):
    from mmcv.ops import roi_pool
    _cuda_only(device)
    feats = torch.randn(1, 4, 20, 20, requires_grad=True)
    rois = torch.cat([torch.zeros(3, 1), _boxes(3, 12)], dim=1)
    _forward_backward(lambda d, f, r: roi_pool(f, r, (5, 5), 1.0), [feats, rois], device,
                      lambda d, f, r: _roi_pool_reference(f, r, 5))


def _sigmoid_focal_loss_reference(logits, labels, gamma, alpha):
    """mmcv's sigmoid focal loss: one-hot targets, ``labels == C`` is background."""
    target = torch.nn.functional.one_hot(labels, logits.shape[1] + 1)[:, :-1].float()
    p = logits.sigmoid()
    pt = (1 - p) * target + p * (1 - target)
    weight = (alpha * target + (1 - alpha) * (1 - target)) * pt.pow(gamma)
    return torch.nn.functional.binary_cross_entropy_with_logits(
        logits, target, reduction='none') * weight


def check_sigmoid_focal_loss(device):
    from mmcv.ops import sigmoid_focal_loss
    _cuda_only(device)
    logits = torch.randn(50, 10, requires_grad=True)
    labels = torch.randint(0, 11, (50, ), generator=torch.Generator().manual_seed(3))
    _forward_backward(
        lambda d, x: sigmoid_focal_loss(x, labels.to(d), 2.0, 0.25, None, 'none'), [logits],
        device, lambda d, x: _sigmoid_focal_loss_reference(x, labels, 2.0, 0.25))


def _conv_module(cls, device, **kwargs):
    torch.manual_seed(0)
    module = cls(4, 6, 3, padding=1, **kwargs)
    for p in module.parameters():
        torch.nn.init.normal_(p, std=0.1)
    return {dev: copy.deepcopy(module).to(dev)
            for dev in (device, torch.device('cpu'))}


def check_deform_conv(device):
    from mmcv.ops import DeformConv2dPack
    modules = _conv_module(DeformConv2dPack, device)
    x = torch.randn(2, 4, 9, 9, requires_grad=True)
    _forward_backward(lambda d, v: modules[d](v), [x], device)


def check_modulated_deform_conv(device):
    from mmcv.ops import ModulatedDeformConv2dPack
    modules = _conv_module(ModulatedDeformConv2dPack, device)
    x = torch.randn(2, 4, 9, 9, requires_grad=True)
    _forward_backward(lambda d, v: modules[d](v), [x], device)


def check_masked_conv(device):
    """Against a dense conv whose output is kept where the mask is set."""
    from mmcv.ops import MaskedConv2d
    _cuda_only(device)
    modules = _conv_module(MaskedConv2d, device)
    x = torch.randn(1, 4, 9, 9)
    mask = (torch.rand(1, 9, 9, generator=torch.Generator().manual_seed(4)) > 0.5).float()
    conv = modules[torch.device('cpu')]
    _forward_backward(
        lambda d, v: modules[d](v, mask.to(d)), [x], device,
        lambda d, v: torch.nn.functional.conv2d(v, conv.weight, conv.bias, padding=1) * mask)


def check_carafe(device):
    """The fast kernel against the naive one (both CUDA only)."""
    from mmcv.ops import carafe, carafe_naive
    _cuda_only(device)
    gen = torch.Generator().manual_seed(6)
    feats = torch.randn(1, 4, 6, 6, generator=gen).to(device).requires_grad_()
    masks = torch.softmax(torch.randn(1, 25, 12, 12, generator=gen), 1).to(device)
    fast, naive = carafe(feats, masks, 5, 1, 2), carafe_naive(feats, masks, 5, 1, 2)
    _close(fast, naive)
    grad_fast, = torch.autograd.grad(fast.sum(), feats)
    grad_naive, = torch.autograd.grad(naive.sum(), feats)
    _close(grad_fast, grad_naive, 1e-3)


def check_ms_deform_attn(device):
    """The CUDA kernel against mmcv's pure-PyTorch version (the only one on CPU)."""
    from mmcv.ops.multi_scale_deform_attn import (MultiScaleDeformableAttnFunction,
                                                  multi_scale_deformable_attn_pytorch)
    _cuda_only(device)
    shapes = torch.tensor([[6, 8], [3, 4]])
    start = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
    gen = torch.Generator().manual_seed(5)
    value = torch.rand(1, int(shapes.prod(1).sum()), 2, 8, generator=gen)
    loc = torch.rand(1, 5, 2, 2, 4, 2, generator=gen)
    weights = torch.softmax(torch.rand(1, 5, 2, 8, generator=gen), -1).view(1, 5, 2, 2, 4)
    out = MultiScaleDeformableAttnFunction.apply(
        value.to(device), shapes.to(device), start.to(device), loc.to(device),
        weights.to(device), 64)
    _close(out, multi_scale_deformable_attn_pytorch(value, shapes, loc, weights), 1e-3)


def check_bbox_overlaps(device):
    from mmcv.ops import bbox_overlaps
    a, b = _boxes(10), _boxes(7, seed=1)
    _close(bbox_overlaps(a.to(device), b.to(device)), bbox_overlaps(a, b))


CHECKS: Dict[str, Callable] = {
    name[len('check_'):]: fn
    for name, fn in sorted(globals().items()) if name.startswith('check_')
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--json', help='write {op: "ok" | error} here')
    args = parser.parse_args(argv)
    import mmcv
    import mmcv.ops  # noqa: F401  (all of mmcv.ops imports: every _ext function exists)
    device = torch.device(args.device)
    results = {}
    for name, check in CHECKS.items():
        try:
            check(device)
            results[name] = 'ok'
        except NoCPUKernel:
            results[name] = 'skipped: no CPU kernel'
        except AssertionError as e:
            results[name] = 'mismatch: ' + str(e).strip().splitlines()[0][:300]
        except Exception as e:  # noqa: BLE001  (report every op, then fail)
            results[name] = f'{type(e).__name__}: {e}'.splitlines()[0][:300]
            traceback.print_exc()
        print(f'[mmcv_ops_smoke] {name:24s} {results[name]}', flush=True)
    failed = sorted(k for k, v in results.items() if v.split(':')[0] not in
                    ('ok', 'skipped', 'mismatch'))
    mismatch = sorted(k for k, v in results.items() if v.startswith('mismatch'))
    ok = sum(v == 'ok' for v in results.values())
    print(f'[mmcv_ops_smoke] mmcv {mmcv.__version__} on {device}: {ok}/{len(results)} ops ok'
          + (f'; mismatch: {mismatch}' if mismatch else '')
          + (f'; failed: {failed}' if failed else ''), flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
