# The paper's Table 1 "4 vs 4*" on the demo: the demo's stock Mask R-CNN with
# its mask head's four 3x3 convs sharing one set of weights (0.87 M mask-head
# parameters instead of 2.64 M); everything else, the predictor init
# included, is the baseline's.
#   python tools/benchmark_model_zoo.py --rows configs/ifr/demo/rows_shapes_shared_convs.yml \
#       --seeds 0 1 2 --work-dir work_dirs/seed_study_shared_convs
_base_ = './mask-rcnn_mbv2_fpn_shapes_baseline.py'

model = dict(roi_head=dict(mask_head=dict(type='WeightSharedFCNMaskHead')))
