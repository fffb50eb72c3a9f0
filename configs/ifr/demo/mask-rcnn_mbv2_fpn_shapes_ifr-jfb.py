# The CPU demo's IFR model trained with the Jacobian-free backward (Fung et
# al. 2022; the phantom gradient of Geng et al. 2021 with one step): the
# gradient flows through one differentiable F step at H* instead of the
# adjoint solve, which makes the DEQ phase's training step cheaper (measured
# in docs/performance.md). The forward solve is the project default.
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
                    phantom_steps=1)))))
