# Table 7: 5 Broyden iterations, forward and backward.
_base_ = '../mask_rcnn_r50_ifr_1x.py'

model = dict(
    roi_head=dict(
        mask_head=dict(
            ifr_cfg=dict(
                solver=dict(max_iter=5, backward_max_iter=5),
                # Table 7 evaluates each model with its own solve: no looser
                # inference tolerance (the mask heads' default test_solver).
                test_solver=dict()))))
