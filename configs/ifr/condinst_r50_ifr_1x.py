# 90k iterations = the paper's 1x. IFR replaces the box head's two towers and
# the stacked convs of the mask branch.
_base_ = [
    'mmdet::condinst/condinst_r50_fpn_ms-poly-90k_coco_instance.py', './_base_/ifr_runtime.py'
]

model = dict(
    bbox_head=dict(type='IFRCondInstBboxHead'), mask_head=dict(type='IFRCondInstMaskHead'))
