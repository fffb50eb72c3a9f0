# The IFR side of the RepPoints demo pair: IFR in the head's classification
# and points towers (as reppoints_r50_ifr_1x.py), everything else the
# baseline's.
_base_ = ['./reppoints_mbv2_fpn_shapes_baseline.py', '../_base_/ifr_hooks.py']

model = dict(bbox_head=dict(type='IFRRepPointsHead'))
