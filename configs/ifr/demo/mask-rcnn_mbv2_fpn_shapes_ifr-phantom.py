# A candidate of the IFR vs stock study (docs/ifr_vs_stock_head.md, row 11):
# the demo's IFR model with the phantom gradient (Geng et al. 2021) in the DEQ
# phase instead of the implicit one: 5 damped (lambda 0.5), differentiable
# steps from the solved H*. Rows 8-9 of the study found the unrolled
# gradient trains this head better than the implicit one; this keeps the DEQ
# forward and takes a gradient of the unrolled kind at the fixed point (and
# skips the adjoint solve). The forward solve is the project default.
_base_ = './mask-rcnn_mbv2_fpn_shapes_ifr.py'

model = dict(
    roi_head=dict(
        mask_head=dict(
            ifr_cfg=dict(
                type='IFRRefiner',
                solver=dict(
                    solver='broyden',
                    max_iter=15,
                    tol=1e-3,
                    solver_kwargs=dict(memory=5),
                    chunk_size=64,
                    grad='phantom',
                    phantom_steps=5,
                    phantom_damping=0.5)))))
