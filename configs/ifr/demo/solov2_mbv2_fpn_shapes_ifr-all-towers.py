# A variant of the SOLOv2 demo's IFR side, not the paper's placement: IFR in
# the category tower too, besides the kernel tower (mmifr's SOLOv2 default
# until the placement followed the paper; its run is
# docs/results/solov2_demo_seeds.md).
_base_ = './solov2_mbv2_fpn_shapes_ifr.py'

model = dict(mask_head=dict(ifr_towers=('kernel_convs', 'cls_convs')))
