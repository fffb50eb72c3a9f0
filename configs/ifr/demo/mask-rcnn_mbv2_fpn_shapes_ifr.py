# The IFR model of the CPU demo: the baseline with mmdet's 4-conv mask head
# swapped for IFRConvFCMaskHead (one double-residual block solved to its fixed
# point with Broyden, 15 forward / 15 backward steps), plus the IFR training
# recipe and solver logging of every IFR config.
_base_ = ['./mask-rcnn_mbv2_fpn_shapes_baseline.py', '../_base_/ifr_hooks.py']

model = dict(roi_head=dict(mask_head=dict(type='IFRConvFCMaskHead')))
