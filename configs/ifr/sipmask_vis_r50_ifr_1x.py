# SipMask R-50 1x (video) with IFR in place of the box head's classification
# and regression towers (paper Table 4: 31.6 -> 31.9 mask AP). The tracking
# branch keeps its stacked convs; `track_head=dict(type='IFRSipMaskTrackHead')`
# refines them too.
_base_ = ['./sipmask_vis_r50_1x.py', './_base_/ifr_hooks.py']

# At inference each tower's solve on each level starts from that level's
# equilibrium of the previous frame, solved to the usual tolerance
# (IFRSipMaskVIS: SipMaskVIS with a warm start, the same weights; on the demo
# video data 0.56x the solver steps at the same VIS AP, docs/performance.md).
# model.warm_start.enabled=False solves every frame from zero, as the paper.
model = dict(
    type='IFRSipMaskVIS',
    warm_start=dict(enabled=True),
    detector=dict(bbox_head=dict(type='IFRSipMaskHead')))
