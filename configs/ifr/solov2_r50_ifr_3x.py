_base_ = ['mmdet::solov2/solov2_r50_fpn_ms-3x_coco.py', './_base_/ifr_runtime.py']

model = dict(mask_head=dict(type='IFRSOLOV2Head'))
