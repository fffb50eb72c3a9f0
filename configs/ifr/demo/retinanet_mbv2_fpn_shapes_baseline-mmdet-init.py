# The stock RetinaNet demo with mmdet's own tower init, N(0, 0.01) (the demo's
# stock side before 2026-12-07; docs/results/retinanet_mmdet_init_demo_seeds.md):
# at 128 channels its towers start at output rms ~0.001 and barely learn in
# the demo's 450 AdamW iterations (docs/model_zoo_demo.md).
_base_ = './retinanet_mbv2_fpn_shapes_baseline.py'

model = dict(
    bbox_head=dict(
        init_cfg=dict(
            _delete_=True,
            type='Normal',
            layer='Conv2d',
            std=0.01,
            override=dict(type='Normal', name='retina_cls', std=0.01, bias_prob=0.01))))
