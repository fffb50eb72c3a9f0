# The budget-from-a-learned-guess demo model (2 block evaluations from
# FixedPointInitializer(X)) with the consistency term: the last iterate is
# pulled onto the block's fixed point H* (solved without a graph each training
# step, started from h_2), so that the budget model stays an equilibrium model
# whose second iterate is its fixed point. A row of docs/ifr_at_stock_cost.md.
_base_ = './mask-rcnn_mbv2_fpn_shapes_ifr-budget-init.py'

model = dict(roi_head=dict(mask_head=dict(ifr_cfg=dict(consistency=dict(weight=1.0)))))
