# The FCOS variant whose baseline matches the paper's 38.6 AP.
_base_ = [
    'mmdet::fcos/fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py',
    './_base_/ifr_runtime.py'
]

model = dict(bbox_head=dict(type='IFRFCOSHead'))
