_base_ = ['mmdet::free_anchor/freeanchor_r50_fpn_1x_coco.py', './_base_/ifr_runtime.py']

model = dict(bbox_head=dict(type='IFRFreeAnchorRetinaHead'))
