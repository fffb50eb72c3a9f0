# The IFR side of the video demo pair: the detector's mask head swapped for
# IFRConvFCMaskHead, plus the IFR hooks; everything else the baseline's. At
# inference each frame's mask RoIs start from the previous frame's equilibria
# (IFRMaskTrackRCNN: MaskTrackRCNN with a warm start; same weights).
_base_ = ['./masktrack-rcnn_mbv2_fpn_shapes-video_baseline.py', '../_base_/ifr_hooks.py']

model = dict(
    type='IFRMaskTrackRCNN',
    warm_start=dict(enabled=True),
    detector=dict(roi_head=dict(mask_head=dict(type='IFRConvFCMaskHead'))))
