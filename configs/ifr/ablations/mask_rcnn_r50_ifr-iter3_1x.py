# Table 7: 3 Broyden iterations, forward and backward.
_base_ = '../mask_rcnn_r50_ifr_1x.py'

model = dict(
    roi_head=dict(
        mask_head=dict(ifr_cfg=dict(solver=dict(max_iter=3, backward_max_iter=3)))))
