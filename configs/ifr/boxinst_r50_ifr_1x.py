# 90k iterations = the paper's 1x. IFR replaces the stacked convs of the mask
# branch, as condinst_r50_ifr_1x.py (BoxInst has CondInst's heads; the box
# head stays stock, `IFRBoxInstBboxHead` refines its towers too).
_base_ = ['mmdet::boxinst/boxinst_r50_fpn_ms-90k_coco.py', './_base_/ifr_runtime.py']

model = dict(mask_head=dict(type='IFRBoxInstMaskHead'))
