# Diagnostic variant of the stock SOLOv2 demo: its GroupNorm kernel and
# category towers start from Kaiming normal init (fan_out, ReLU) instead of
# mmdet's N(0, 0.01), as solo_mbv2_fpn_shapes_baseline-kaiming-towers.py; the
# predictors and the mask feature branch keep mmdet's init.
#   python tools/train.py configs/ifr/demo/solov2_mbv2_fpn_shapes_baseline-kaiming-towers.py
_base_ = './solov2_mbv2_fpn_shapes_baseline.py'

model = dict(
    mask_head=dict(init_cfg=[
        dict(type='Kaiming', layer='Conv2d', mode='fan_out', nonlinearity='relu',
             distribution='normal'),
        dict(type='Normal', std=0.01, override=dict(name='conv_kernel')),
        dict(type='Normal', std=0.01, bias_prob=0.01, override=dict(name='conv_cls')),
    ]))
