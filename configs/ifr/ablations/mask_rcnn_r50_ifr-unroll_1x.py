# Table 6, "implicit / unrolling": 4 weight-shared blocks, plain autograd.
_base_ = '../mask_rcnn_r50_ifr_1x.py'

model = dict(
    roi_head=dict(
        mask_head=dict(ifr_cfg=dict(type='IFRRefiner', mode='unroll', num_steps=4))))
custom_hooks = [dict(type='IFRSolverStatsHook')]
