"""Probe a CondInst (stock or IFR) in training mode: the scale of what its
mask branch hands on, and which loss pulls on the shared features.

On the first ``--num-batches`` training batches (no random flip), with the
model in training mode (BatchNorm on batch statistics, the refiner's DEQ
solve, as after the unrolled warm-up), prints and writes (``--out``, JSON):

* rms, mean and share of positive values of the mask branch's tower output
  (the stock convs, or the refiner), of ``conv_pred``'s output (the mask
  features the dynamic convs read) and of the controller's output (the
  dynamic parameters, at every location);
* the gradient norms of the mask loss and of the detection losses (cls, box,
  centerness) on the box head's regression tower (it feeds the controller)
  and on the FPN levels that the mask branch reads, and their ratio.

Without a checkpoint the model's initial weights are probed. Example
(docs/condinst_ifr_vs_stock.md)::

    python tools/analysis_tools/probe_condinst.py \\
        configs/ifr/demo/condinst_mbv2_fpn_shapes_ifr.py \\
        work_dirs/seed_study_condinst/condinst_mbv2_shapes/ifr/seed0/iter_450.pth \\
        --out work_dirs/probe/condinst_ifr_s0.json
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List

import torch
from mmengine.config import DictAction
from mmengine.runner import set_random_seed

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from tools.lib.models import build_detector, build_loader, config_dataset  # noqa: E402
from tools.lib.outputs import write_json  # noqa: E402
from tools.lib.progress import quiet_mmengine  # noqa: E402

DETECTION_LOSSES = ('loss_cls', 'loss_bbox', 'loss_centerness')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', help='weights (default: the initial ones)')
    parser.add_argument('--num-batches', type=int, default=4)
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the initial weights (without a checkpoint)')
    parser.add_argument('--out', help='JSON file for the results')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='overrides of the config, as tools/train.py takes them')
    return parser.parse_args(argv)


def _stats(t: torch.Tensor) -> Dict[str, float]:
    t = t.detach().float()
    return dict(rms=t.pow(2).mean().sqrt().item(), mean=t.mean().item(),
                positive=(t > 0).float().mean().item())


def _grad_norm(loss: torch.Tensor, inputs: List[torch.Tensor]) -> float:
    grads = torch.autograd.grad(loss, inputs, retain_graph=True, allow_unused=True)
    return sum(g.pow(2).sum().item() for g in grads if g is not None)**0.5


def probe_batch(model, batch: dict) -> Dict[str, float]:
    """The statistics of one training batch (see the module docstring)."""
    mask_feature_head = model.mask_head.mask_feature_head
    seen: Dict[str, torch.Tensor] = {}
    hooks = [
        mask_feature_head.conv_branch.register_forward_hook(
            lambda m, i, o: seen.__setitem__('tower', o)),
        mask_feature_head.conv_pred.register_forward_hook(
            lambda m, i, o: seen.__setitem__('conv_pred', o)),
        model.bbox_head.controller.register_forward_hook(
            lambda m, i, o: seen.setdefault('controller', []).append(o)),
        model.neck.register_forward_hook(lambda m, i, o: seen.__setitem__('fpn', o)),
    ]
    try:
        data = model.data_preprocessor(batch, training=True)
        losses = model.loss(data['inputs'], data['data_samples'])
    finally:
        for hook in hooks:
            hook.remove()
    mask_loss = losses['loss_mask']
    det_loss = sum(losses[k] for k in DETECTION_LOSSES)
    reg_params = [p for p in model.bbox_head.reg_convs.parameters() if p.requires_grad]
    fpn = list(seen['fpn'][mask_feature_head.start_level:mask_feature_head.end_level + 1])
    out = {f'tower_{k}': v for k, v in _stats(seen['tower']).items()}
    out.update({f'conv_pred_{k}': v for k, v in _stats(seen['conv_pred']).items()})
    controller = torch.cat([c.flatten(2) for c in seen['controller']], dim=2)
    out['controller_rms'] = _stats(controller)['rms']
    for name, params in (('reg_convs', reg_params), ('fpn_mask_levels', fpn)):
        out[f'grad_mask_{name}'] = _grad_norm(mask_loss, params)
        out[f'grad_det_{name}'] = _grad_norm(det_loss, params)
        out[f'grad_ratio_{name}'] = out[f'grad_mask_{name}'] / max(out[f'grad_det_{name}'], 1e-12)
    out.update({k: v.item() for k, v in losses.items() if k.startswith('loss')})
    return out


def main(argv=None) -> dict:
    args = parse_args(argv)
    quiet_mmengine()
    set_random_seed(args.seed)
    model, cfg = build_detector(args.config, args.cfg_options, checkpoint=args.checkpoint)
    model.train()
    loader = build_loader(cfg, args.num_batches * args.batch_size,
                          config_dataset(cfg, train=True), batch_size=args.batch_size)
    rows = [probe_batch(model, batch) for batch in loader]
    summary = {key: sum(r[key] for r in rows) / len(rows) for key in rows[0]}
    for key, value in summary.items():
        print(f'{key:28s} {value:.4g}')
    result = dict(config=args.config, checkpoint=args.checkpoint, cfg_options=args.cfg_options,
                  mean=summary, batches=rows)
    if args.out:
        write_json(args.out, result, indent=1)
    return result


if __name__ == '__main__':
    main()
