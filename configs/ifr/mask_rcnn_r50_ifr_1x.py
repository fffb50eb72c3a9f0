_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', './_base_/ifr_runtime.py']

# The refiner's settings are its defaults for the RoI mask heads.
model = dict(
    roi_head=dict(
        mask_head=dict(
            type='IFRConvFCMaskHead',
            ifr_cfg=dict(
                type='IFRRefiner',
                mode='deq',
                num_steps=4,
                block=dict(type='DoubleResidualBlock', mid_channels=256, form='bounded'),
                # Not spelled out, so that each may be overridden alone: the
                # head's default budget=2 (two block evaluations from H0 = 0
                # in training and inference: the stock 4-conv tower's cost)
                # and fp_correction=dict(gamma=0.8) (the mask loss on both
                # iterates). budget=None is the paper's protocol:
                # ./mask_rcnn_r50_ifr-deq_1x.py.
                # The solve of the paper's protocol (used when budget=None):
                # Broyden, 15/15 steps, tol 1e-3, with two memory bounds: a
                # 5-update history and 64-RoI chunks (chunks do not change the
                # result; see docs/performance.md).
                solver=dict(
                    solver='broyden',
                    max_iter=15,
                    tol=1e-3,
                    backward_max_iter=15,
                    solver_kwargs=dict(memory=5),
                    backward_solver_kwargs=dict(memory=5),
                    chunk_size=64)))))
