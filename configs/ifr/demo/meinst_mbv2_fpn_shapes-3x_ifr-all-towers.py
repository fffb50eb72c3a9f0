# A variant of the 3x MEInst demo's IFR side, not the paper's placement: IFR
# in the classification and regression towers too, besides the mask tower
# (mmifr's MEInst default until the placement followed the paper; its seed
# study is docs/results/meinst_demo_seeds.md).
_base_ = './meinst_mbv2_fpn_shapes-3x_ifr.py'

model = dict(bbox_head=dict(ifr_towers=('mask_convs', 'cls_convs', 'reg_convs')))
