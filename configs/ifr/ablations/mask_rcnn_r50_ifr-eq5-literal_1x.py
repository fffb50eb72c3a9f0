# Eq. 5 exactly as printed, F = W2(relu(W1(R))) + R. Its Jacobian is I + J_W,
# so it has no bounded fixed point: expect the solver to report
# non-convergence. Kept as a documented ablation, not a recommended model.
_base_ = '../mask_rcnn_r50_ifr_1x.py'

model = dict(roi_head=dict(mask_head=dict(ifr_cfg=dict(block=dict(form='literal')))))
