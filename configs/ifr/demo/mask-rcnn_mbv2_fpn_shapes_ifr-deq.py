# The CPU demo's IFR model with the paper's protocol, mmifr's default until
# the fixed-budget refiner replaced it: the unrolled warm-up (the first 5/9 of
# training), then the Broyden solve with implicit gradients, and the RoI mask
# heads' inference solve (tol 1e-2, F of the best iterate). One key away from
# the default: ifr_cfg.budget=None. Compared in docs/ifr_at_stock_cost.md.
_base_ = './mask-rcnn_mbv2_fpn_shapes_ifr.py'

model = dict(roi_head=dict(mask_head=dict(ifr_cfg=dict(budget=None))))
