# The CPU demo's IFR model with the fixed budget alone: 2 block evaluations in
# training and inference, the mask loss on the last iterate only (no
# fixed-point correction). A row of docs/ifr_at_stock_cost.md.
_base_ = './mask-rcnn_mbv2_fpn_shapes_ifr.py'

model = dict(roi_head=dict(mask_head=dict(ifr_cfg=dict(budget=2))))
