# SipMask R-50 1x (video) with IFR in place of the box head's classification
# and regression towers (paper Table 4: 31.6 -> 31.9 mask AP). The tracking
# branch keeps its stacked convs; `track_head=dict(type='IFRSipMaskTrackHead')`
# refines them too.
_base_ = ['./sipmask_vis_r50_1x.py', './_base_/ifr_hooks.py']

model = dict(detector=dict(bbox_head=dict(type='IFRSipMaskHead')))
