# The IFR side of the video demo pair: the detector's mask head swapped for
# IFRConvFCMaskHead, plus the IFR hooks; everything else the baseline's. The
# video model is IFRMaskTrackRCNN (MaskTrackRCNN that can start each frame's
# mask RoIs from the previous frame's equilibria; the same weights): off here,
# since on this data a RoI's equilibrium moves too much from frame to frame
# for it to pay (docs/results/video_warm_start.md); model.warm_start.enabled=True
# turns it on.
_base_ = ['./masktrack-rcnn_mbv2_fpn_shapes-video_baseline.py', '../_base_/ifr_hooks.py']

model = dict(
    type='IFRMaskTrackRCNN',
    warm_start=dict(enabled=False),
    detector=dict(roi_head=dict(mask_head=dict(type='IFRConvFCMaskHead'))))
