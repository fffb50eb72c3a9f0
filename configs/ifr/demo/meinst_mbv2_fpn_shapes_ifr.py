# The IFR side of the MEInst demo pair: the head's mask-coefficient tower
# replaced by IFR (as meinst_r50_ifr_1x.py), everything else the baseline's.
_base_ = ['./meinst_mbv2_fpn_shapes_baseline.py', '../_base_/ifr_hooks.py']

model = dict(bbox_head=dict(type='IFRMEInstBboxHead'))
