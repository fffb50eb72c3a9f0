# The IFR side of the SipMask video demo pair: IFR in the box head's
# classification and regression towers (as sipmask_vis_r50_ifr_1x.py); the
# tracking branch keeps its convs, as the stock side. At inference each
# frame's solves start from the previous frame's equilibria, to the usual
# tolerance (IFRSipMaskVIS: SipMaskVIS with a warm start; same weights; 0.56x
# the solver steps at the same VIS AP, docs/results/video_warm_start_sipmask.md).
_base_ = ['./sipmask-vis_mbv2_fpn_shapes-video_baseline.py', '../_base_/ifr_hooks.py']

model = dict(
    type='IFRSipMaskVIS',
    warm_start=dict(enabled=True),
    detector=dict(bbox_head=dict(type='IFRSipMaskHead')))
