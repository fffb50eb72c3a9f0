# 90k iterations = the paper's 1x. IFR replaces the box head's two towers and
# the stacked convs of the mask branch.
_base_ = ['mmdet::boxinst/boxinst_r50_fpn_ms-90k_coco.py', './_base_/ifr_runtime.py']

model = dict(bbox_head=dict(type='IFRBoxInstBboxHead'), mask_head=dict(type='IFRBoxInstMaskHead'))
