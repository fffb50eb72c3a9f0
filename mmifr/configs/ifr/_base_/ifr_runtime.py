# The hooks of every IFR config (configs/ifr/_base_/ifr_hooks.py), new-style: solver statistics in
# the log, and the reference recipe (unrolled warm-up for the first 5/9 of the schedule, then the
# DEQ solve). The aux loss hook adds a refiner's Jacobian penalty (ifr_cfg.jac_reg) to the losses.
# No custom_imports: the class imports below import mmifr when the config is built.
from mmifr.engine import IFRAuxLossHook, IFRSolverStatsHook, IFRUnrollWarmupHook

custom_hooks = [
    dict(type=IFRSolverStatsHook),
    dict(type=IFRUnrollWarmupHook, switch_ratio=5 / 9, unroll_steps=4),
    dict(type=IFRAuxLossHook),
]
