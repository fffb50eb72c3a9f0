# A variant of the SOLO demo's IFR side, not the paper's placement: IFR in the
# category tower too, besides the mask tower (mmifr's SOLO default until the
# placement followed the paper; its run is docs/results/solo_demo_seeds.md).
_base_ = './solo_mbv2_fpn_shapes_ifr.py'

model = dict(mask_head=dict(ifr_towers=('mask_convs', 'cls_convs')))
