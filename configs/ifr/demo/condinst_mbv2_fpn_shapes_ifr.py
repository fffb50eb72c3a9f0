# The IFR side of the CondInst demo pair: IFR in the mask branch's tower (as
# condinst_r50_ifr_1x.py), everything else the baseline's.
_base_ = ['./condinst_mbv2_fpn_shapes_baseline.py', '../_base_/ifr_hooks.py']

model = dict(mask_head=dict(type='IFRCondInstMaskHead'))
