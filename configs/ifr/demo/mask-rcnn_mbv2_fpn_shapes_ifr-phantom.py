# A candidate of the IFR vs stock study (docs/ifr_vs_stock_head.md, row 11):
# the demo's IFR model with the phantom gradient (Geng et al. 2021) in the DEQ
# phase instead of the implicit one: 5 damped (lambda 0.5), differentiable
# steps from the solved H*. Rows 8-9 of the study found the unrolled
# gradient trains this head better than the implicit one; this keeps the DEQ
# forward and takes a gradient of the unrolled kind at the fixed point (and
# skips the adjoint solve). The Jacobian-free demo is the same gradient with
# one undamped step; only its step count and damping change here.
_base_ = './mask-rcnn_mbv2_fpn_shapes_ifr-jfb.py'

model = dict(
    roi_head=dict(
        mask_head=dict(ifr_cfg=dict(solver=dict(phantom_steps=5, phantom_damping=0.5)))))
