# BlendMask R-50 1x with IFR in place of the bottom module's three stacked
# convs, the mask branch (paper Table 3: 35.8 -> 36.4 mask AP); the box head
# stays stock (bbox_head.type='IFRCondInstBboxHead' refines its towers too: a
# variant, not the paper's row).
_base_ = ['./blendmask_r50_1x.py', './_base_/ifr_hooks.py']

model = dict(mask_head=dict(type='IFRBlendMaskHead'))
