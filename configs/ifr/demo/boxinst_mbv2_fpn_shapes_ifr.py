# The IFR side of the BoxInst demo pair: IFR in the box head's two towers and
# the mask branch's stacked convs (as boxinst_r50_ifr_1x.py), everything else
# the baseline's.
_base_ = ['./boxinst_mbv2_fpn_shapes_baseline.py', '../_base_/ifr_hooks.py']

model = dict(bbox_head=dict(type='IFRBoxInstBboxHead'), mask_head=dict(type='IFRBoxInstMaskHead'))
