# The IFR side of the BMask R-CNN demo pair: the mask branch's four convs
# replaced by IFR, the boundary branch's two convs kept (as bmask_rcnn_r50_ifr_1x).
_base_ = ['./bmask-rcnn_mbv2_fpn_shapes_baseline.py', '../_base_/ifr_hooks.py']

model = dict(roi_head=dict(mask_head=dict(type='IFRBoundaryPreservingMaskHead')))
