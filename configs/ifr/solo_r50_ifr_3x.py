_base_ = ['mmdet::solo/solo_r50_fpn_3x_coco.py', './_base_/ifr_runtime.py']

model = dict(mask_head=dict(type='IFRSOLOHead'))
