# MEInst R-50 1x with IFR in place of its three towers (classification,
# regression, mask coefficients), as mmifr's CondInst row (paper Table 3:
# 31.6 -> 32.6 mask AP). ifr_towers=('mask_convs', ) keeps the detection
# towers stock.
_base_ = ['./meinst_r50_1x.py', './_base_/ifr_hooks.py']

model = dict(bbox_head=dict(type='IFRMEInstBboxHead'))
