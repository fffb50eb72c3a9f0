# Table 1's "4*" as the released IFR code builds it ("weight_sharing"): IFR's
# GroupNorm double-residual block applied 4 times with one set of weights,
# plain autograd (IFRRefiner mode='unroll'; Table 6's "implicit / unrolling").
# The other reading of "4*", the stock conv shared 4 times, is
# mask-rcnn_mbv2_fpn_shapes_shared-convs.py. Everything else is the IFR demo's.
#   python tools/benchmark_model_zoo.py --rows configs/ifr/demo/rows_shapes_shared_convs.yml \
#       --seeds 0 1 2 --work-dir work_dirs/seed_study_shared_convs
_base_ = './mask-rcnn_mbv2_fpn_shapes_ifr.py'

model = dict(roi_head=dict(mask_head=dict(ifr_cfg=dict(mode='unroll', num_steps=4))))
# Nothing to warm up: the whole schedule is unrolled.
custom_hooks = [dict(type='IFRSolverStatsHook')]
