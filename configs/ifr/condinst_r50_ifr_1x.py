# 90k iterations = the paper's 1x. IFR replaces the stacked convs of the mask
# branch, the "mask head" that the paper's instance segmentation tables refine
# (Sec. 3.1; IFR in detection heads is the separate Table 5). The box head
# stays stock: with its towers refined too (bbox_head.type='IFRCondInstBboxHead')
# the controller that writes the dynamic mask weights trains poorly on the demo
# data (configs/ifr/README.md, the CondInst row).
_base_ = [
    'mmdet::condinst/condinst_r50_fpn_ms-poly-90k_coco_instance.py', './_base_/ifr_runtime.py'
]

model = dict(mask_head=dict(type='IFRCondInstMaskHead'))
