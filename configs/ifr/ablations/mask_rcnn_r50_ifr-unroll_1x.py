# Table 6, "implicit / unrolling": 4 weight-shared blocks, plain autograd. No
# warm-up hook: the whole schedule is unrolled.
_base_ = '../mask_rcnn_r50_ifr_1x.py'

model = dict(roi_head=dict(mask_head=dict(ifr_cfg=dict(mode='unroll'))))
custom_hooks = [dict(type='IFRSolverStatsHook')]
