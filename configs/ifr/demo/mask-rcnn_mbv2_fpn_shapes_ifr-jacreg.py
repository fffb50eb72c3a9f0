# The CPU demo's IFR model trained with Jacobian regularisation (Bai et al.,
# ICML 2021): the penalty on ||dF/dH||_F^2 at the refined feature makes the
# block contract faster, so the inference solve needs fewer steps for the
# same tolerance (measured in docs/performance.md).
_base_ = './mask-rcnn_mbv2_fpn_shapes_ifr.py'

model = dict(
    roi_head=dict(
        mask_head=dict(ifr_cfg=dict(type='IFRRefiner', jac_reg=dict(weight=2.0)))))
