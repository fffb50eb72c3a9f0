# The IFR side of the video demo pair: the detector's mask head swapped for
# IFRConvFCMaskHead, plus the IFR hooks; everything else the baseline's.
_base_ = ['./masktrack-rcnn_mbv2_fpn_shapes-video_baseline.py', '../_base_/ifr_hooks.py']

model = dict(detector=dict(roi_head=dict(mask_head=dict(type='IFRConvFCMaskHead'))))
