# A variant of the BlendMask demo's IFR side, not the paper's placement: IFR
# in the box head's two towers too, besides the bottom module (mmifr's
# BlendMask default until the placement followed the paper; its seed study is
# docs/results/blendmask_all_towers_demo_seeds.md).
_base_ = './blendmask_mbv2_fpn_shapes_ifr.py'

model = dict(bbox_head=dict(type='IFRCondInstBboxHead'))
