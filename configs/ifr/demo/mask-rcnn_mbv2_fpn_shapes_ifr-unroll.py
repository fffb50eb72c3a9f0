# Table 1's "4*" as the released code builds it (its "weight_sharing" setting):
# the IFR head's GroupNorm double-residual block applied 4 times with shared
# weights, plain autograd over the whole schedule (no DEQ phase, so no warm-up
# hook). The bare shared conv of Fig. 1 (b) is
# ./mask-rcnn_mbv2_fpn_shapes_shared-convs.py; rows_shapes_shared_convs.yml
# puts both beside the stock head.
_base_ = './mask-rcnn_mbv2_fpn_shapes_ifr.py'

model = dict(roi_head=dict(mask_head=dict(ifr_cfg=dict(mode='unroll'))))
custom_hooks = [dict(type='IFRSolverStatsHook')]
