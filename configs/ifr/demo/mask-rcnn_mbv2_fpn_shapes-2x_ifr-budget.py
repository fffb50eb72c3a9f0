# The 900-iteration demo pair's IFR side with the fixed budget and fixed-point
# correction (see ./mask-rcnn_mbv2_fpn_shapes_ifr-budget.py).
_base_ = './mask-rcnn_mbv2_fpn_shapes-2x_ifr.py'

model = dict(
    roi_head=dict(
        mask_head=dict(ifr_cfg=dict(budget=2, fp_correction=dict(gamma=0.8), with_cp=True))))
