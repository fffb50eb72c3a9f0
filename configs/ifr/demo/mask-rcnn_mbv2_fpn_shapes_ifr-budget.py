# The CPU demo's IFR model at the stock model's cost: a fixed budget of 2 block
# evaluations in training and inference (each is 2 convs: the stock 4-conv
# tower's cost), every iterate supervised by the mask loss (fixed-point
# correction, weights 0.8^(K-k), normalised), recomputed in backward (with_cp:
# the same gradients; the seed studies' runs trained without it). The library's
# BUDGET_IFR_CFG. An opt-in beside the paper's protocol; measured in
# docs/ifr_at_stock_cost.md.
_base_ = './mask-rcnn_mbv2_fpn_shapes_ifr.py'

model = dict(
    roi_head=dict(
        mask_head=dict(ifr_cfg=dict(budget=2, fp_correction=dict(gamma=0.8), with_cp=True))))
