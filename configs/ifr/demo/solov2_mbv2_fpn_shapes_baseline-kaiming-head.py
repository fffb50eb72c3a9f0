# Diagnostic variant of the stock SOLOv2 demo, one change after
# solov2_mbv2_fpn_shapes_baseline-kaiming-towers.py: the mask feature branch's
# GroupNorm convs start from Kaiming normal init (fan_out, ReLU) as well, so
# every GroupNorm conv of the mask head does; the predictors keep mmdet's init.
#   python tools/train.py configs/ifr/demo/solov2_mbv2_fpn_shapes_baseline-kaiming-head.py
_base_ = './solov2_mbv2_fpn_shapes_baseline-kaiming-towers.py'

model = dict(
    mask_head=dict(mask_feature_head=dict(init_cfg=dict(
        type='Kaiming', layer='Conv2d', mode='fan_out', nonlinearity='relu',
        distribution='normal'))))
