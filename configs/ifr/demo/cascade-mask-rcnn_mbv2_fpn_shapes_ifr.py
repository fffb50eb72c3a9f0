# The IFR side of the Cascade Mask R-CNN demo pair: each stage's mask head is
# IFRConvFCMaskHead (as cascade_mask_rcnn_r50_ifr_1x.py).
_base_ = ['./cascade-mask-rcnn_mbv2_fpn_shapes_baseline.py', '../_base_/ifr_hooks.py']

model = dict(roi_head=dict(mask_head=dict(type='IFRConvFCMaskHead')))
