# The IFR side of the CondInst demo pair: IFR in the box head's two towers and
# the mask branch's tower (as condinst_r50_ifr_1x.py).
_base_ = ['./condinst_mbv2_fpn_shapes_baseline.py', '../_base_/ifr_hooks.py']

model = dict(
    bbox_head=dict(type='IFRCondInstBboxHead'), mask_head=dict(type='IFRCondInstMaskHead'))
