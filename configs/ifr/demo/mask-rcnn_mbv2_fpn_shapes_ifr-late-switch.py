# A candidate of the IFR vs stock study (docs/ifr_vs_stock_head.md): the
# demo's IFR model with a longer unrolled warm-up, 7/9 of the schedule (350 of
# 450 iterations) instead of the reference recipe's 5/9. Row 8 of the study
# found the unrolled phase helps (DEQ from the start lost 3.7-4.0 mask AP).
_base_ = './mask-rcnn_mbv2_fpn_shapes_ifr.py'

# Lists replace their base: this is ../_base_/ifr_hooks.py with a later switch.
custom_hooks = [
    dict(type='IFRSolverStatsHook'),
    dict(type='IFRUnrollWarmupHook', switch_ratio=7 / 9, unroll_steps=4),
    dict(type='IFRAuxLossHook'),
]
