# The IFR side of the 2x CondInst demo pair (as condinst_mbv2_fpn_shapes_ifr.py);
# the unrolled warm-up scales with the schedule (500 of 900 iterations).
_base_ = ['./condinst_mbv2_fpn_shapes-2x_baseline.py', '../_base_/ifr_hooks.py']

model = dict(mask_head=dict(type='IFRCondInstMaskHead'))
