# SipMask R-50 1x (video), multi-scale training, with IFR in the box head's
# towers (paper Table 4, "MST": 33.7 -> 34.6 mask AP).
_base_ = ['./sipmask_vis_r50_ms_1x.py', './_base_/ifr_hooks.py']

# Each frame warm-starts from the previous one (see sipmask_vis_r50_ifr_1x.py).
model = dict(
    type='IFRSipMaskVIS',
    warm_start=dict(enabled=True),
    detector=dict(bbox_head=dict(type='IFRSipMaskHead')))
