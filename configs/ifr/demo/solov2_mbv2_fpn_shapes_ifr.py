# The IFR side of the SOLOv2 demo pair: IFR in place of the kernel tower (as
# solov2_r50_ifr_3x.py), everything else the baseline's.
#   python tools/train.py configs/ifr/demo/solov2_mbv2_fpn_shapes_ifr.py
_base_ = ['./solov2_mbv2_fpn_shapes_baseline.py', '../_base_/ifr_hooks.py']

model = dict(mask_head=dict(type='IFRSOLOV2Head'))
