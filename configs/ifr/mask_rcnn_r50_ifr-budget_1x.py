# IFR at the stock model's cost: a fixed budget of 2 block evaluations from
# H0 = 0 in training and inference (each is 2 convs: the stock 4-conv tower's
# cost; no solver, a static graph), every iterate supervised by the mask loss
# (fixed-point correction), the evaluations recomputed in backward (with_cp:
# the same gradients, a mask-head training peak below the stock head's). What
# it costs and scores on the demo data: docs/ifr_at_stock_cost.md.
_base_ = './mask_rcnn_r50_ifr_1x.py'

model = dict(
    roi_head=dict(
        mask_head=dict(ifr_cfg=dict(budget=2, fp_correction=dict(gamma=0.8), with_cp=True))))
