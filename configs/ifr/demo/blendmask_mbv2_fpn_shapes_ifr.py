# The IFR side of the BlendMask demo pair: IFR in the bottom module's tower
# and the box head's two towers (as blendmask_r50_ifr_1x.py).
_base_ = ['./blendmask_mbv2_fpn_shapes_baseline.py', '../_base_/ifr_hooks.py']

model = dict(bbox_head=dict(type='IFRCondInstBboxHead'), mask_head=dict(type='IFRBlendMaskHead'))
