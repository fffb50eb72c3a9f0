# The hooks of every IFR config: log the solver statistics, and train with
# the reference recipe (unrolled warm-up for the first 5/9 of the schedule, as
# 50k of 90k iterations in the released code, then the DEQ solve). The aux
# loss hook adds a refiner's Jacobian penalty (ifr_cfg.jac_reg, off by
# default) to the loss dict; without jac_reg it does nothing. Configs whose
# base already imports mmifr (the demo pairs) inherit this file alone.
custom_hooks = [
    dict(type='IFRSolverStatsHook'),
    dict(type='IFRUnrollWarmupHook', switch_ratio=5 / 9, unroll_steps=4),
    dict(type='IFRAuxLossHook'),
]
