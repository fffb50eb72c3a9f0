# BlendMask R-50 1x with IFR in place of the bottom module's three stacked
# convs and of the box head's two towers, as mmifr's CondInst row (paper
# Table 3: 35.8 -> 36.4 mask AP).
_base_ = ['./blendmask_r50_1x.py', './_base_/ifr_hooks.py']

model = dict(bbox_head=dict(type='IFRCondInstBboxHead'), mask_head=dict(type='IFRBlendMaskHead'))
