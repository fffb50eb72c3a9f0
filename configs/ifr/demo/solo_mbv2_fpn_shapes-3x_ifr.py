# The IFR side of the 3x SOLO demo pair (as solo_mbv2_fpn_shapes_ifr.py).
_base_ = ['./solo_mbv2_fpn_shapes-3x_baseline.py', '../_base_/ifr_hooks.py']

model = dict(mask_head=dict(type='IFRSOLOHead'))
