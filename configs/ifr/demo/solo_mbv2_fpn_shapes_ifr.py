# The IFR side of the SOLO demo pair: IFR in place of the mask tower (as
# solo_r50_ifr_3x.py), everything else the baseline's.
#   python tools/train.py configs/ifr/demo/solo_mbv2_fpn_shapes_ifr.py
_base_ = ['./solo_mbv2_fpn_shapes_baseline.py', '../_base_/ifr_hooks.py']

model = dict(mask_head=dict(type='IFRSOLOHead'))
