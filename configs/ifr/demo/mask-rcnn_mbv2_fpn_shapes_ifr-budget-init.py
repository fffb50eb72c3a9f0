# The budget-alone demo model (2 block evaluations in training and inference)
# with a learned initial guess: the 2 evaluations start from
# FixedPointInitializer(X) instead of H0 = 0, trained by the mask loss with the
# model (Skip-DEQ's joint training; about 3 % of one evaluation's cost). A row
# of docs/ifr_at_stock_cost.md.
_base_ = './mask-rcnn_mbv2_fpn_shapes_ifr-budget-only.py'

model = dict(roi_head=dict(mask_head=dict(ifr_cfg=dict(initializer=dict()))))
