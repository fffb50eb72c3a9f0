_base_ = [
    'mmdet::reppoints/reppoints-moment_r50_fpn-gn_head-gn_1x_coco.py', './_base_/ifr_runtime.py'
]

model = dict(bbox_head=dict(type='IFRRepPointsHead'))
