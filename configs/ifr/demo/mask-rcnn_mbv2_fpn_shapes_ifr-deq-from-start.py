# A candidate of the IFR vs stock study (docs/ifr_vs_stock_head.md): the
# demo's IFR model trained with the DEQ solve from the first iteration,
# without the reference recipe's unrolled warm-up (5/9 of the schedule).
# In the default recipe the IFR head's training mask loss trails the stock
# head's during the unrolled phase and catches up after the switch.
_base_ = './mask-rcnn_mbv2_fpn_shapes_ifr.py'

# Lists replace their base: this is ../_base_/ifr_hooks.py without the
# IFRUnrollWarmupHook.
custom_hooks = [dict(type='IFRSolverStatsHook'), dict(type='IFRAuxLossHook')]
