# MEInst R-50 1x with IFR in place of its mask-coefficient tower, the mask
# branch (paper Table 3: 31.6 -> 32.6 mask AP); the detection towers stay
# stock. bbox_head.ifr_towers=('mask_convs', 'cls_convs', 'reg_convs') refines
# all three (a variant, not the paper's row).
_base_ = ['./meinst_r50_1x.py', './_base_/ifr_hooks.py']

model = dict(bbox_head=dict(type='IFRMEInstBboxHead'))
