# MaskTrack R-CNN R-50 1x, multi-scale training, with IFR in the detector's
# mask head (paper Table 4, "MST": 30.5 -> 31.4 mask AP).
_base_ = ['./masktrack_rcnn_r50_ms_1x.py', './_base_/ifr_runtime.py']

# The warm start across frames stays off (see masktrack_rcnn_r50_ifr_1x.py).
model = dict(
    type='IFRMaskTrackRCNN',
    warm_start=dict(enabled=False),
    detector=dict(roi_head=dict(mask_head=dict(type='IFRConvFCMaskHead'))))
