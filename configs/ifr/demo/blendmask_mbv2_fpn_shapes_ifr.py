# The IFR side of the BlendMask demo pair: IFR in the bottom module's tower
# (as blendmask_r50_ifr_1x.py), everything else the baseline's.
_base_ = ['./blendmask_mbv2_fpn_shapes_baseline.py', '../_base_/ifr_hooks.py']

model = dict(mask_head=dict(type='IFRBlendMaskHead'))
