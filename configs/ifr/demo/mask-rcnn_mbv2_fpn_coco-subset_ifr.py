# The coco_subset baseline with the IFR mask head (see the shapes IFR config).
_base_ = ['./mask-rcnn_mbv2_fpn_coco-subset_baseline.py', '../_base_/ifr_hooks.py']

model = dict(roi_head=dict(mask_head=dict(type='IFRConvFCMaskHead')))
