# The IFR side of the RetinaNet demo pair: one IFR block in place of each of
# RetinaHead's two 4-conv towers (as retinanet_r50_ifr_1x.py).
_base_ = ['./retinanet_mbv2_fpn_shapes_baseline.py', '../_base_/ifr_hooks.py']

model = dict(bbox_head=dict(type='IFRRetinaHead'))
