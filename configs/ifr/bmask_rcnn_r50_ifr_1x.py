# BMask R-CNN R-50 1x with IFR in place of the mask branch's four convs (paper
# Table 2: 36.6 -> 37.3 mask AP). The boundary branch keeps its two convs;
# ifr_towers=('convs', 'boundary_convs') would refine them by IFR too.
_base_ = ['./bmask_rcnn_r50_1x.py', './_base_/ifr_hooks.py']

model = dict(
    roi_head=dict(
        mask_head=dict(
            type='IFRBoundaryPreservingMaskHead',
            ifr_towers=('convs', ),
            ifr_cfg=dict(type='IFRRefiner'))))
