# The IFR side of the Mask Scoring R-CNN demo pair: IFRConvFCMaskHead in place
# of the mask head's 4 convs; MaskIoUHead is untouched (as ms_rcnn_r50_ifr_1x.py).
_base_ = ['./ms-rcnn_mbv2_fpn_shapes_baseline.py', '../_base_/ifr_hooks.py']

model = dict(roi_head=dict(mask_head=dict(type='IFRConvFCMaskHead')))
