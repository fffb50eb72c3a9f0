# The CondInst demo pair trained twice as long (900 iterations, lr step at
# 80 %), as the Mask R-CNN pair's mask-rcnn_mbv2_fpn_shapes-2x_*.py: whether
# IFR's gap on CondInst closes with the schedule (docs/condinst_ifr_vs_stock.md).
_base_ = './condinst_mbv2_fpn_shapes_baseline.py'

max_iters = 900
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=25),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[int(max_iters * 0.8)],
        gamma=0.1),
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
