# FreeAnchor (mmdet's freeanchor_r50_fpn_1x_coco.py) on the CPU demo: the
# RetinaNet demo with FreeAnchor's head, box coder and loss, as mmdet derives
# its FreeAnchor config from its RetinaNet one. Box only.
_base_ = './retinanet_mbv2_fpn_shapes_baseline.py'

model = dict(
    bbox_head=dict(
        # FreeAnchorRetinaHead with the IFR head's predictor init (see the
        # RetinaNet demo).
        type='SmallInitFreeAnchorRetinaHead',
        bbox_coder=dict(target_stds=[0.1, 0.1, 0.2, 0.2]),
        loss_bbox=dict(_delete_=True, type='SmoothL1Loss', beta=0.11, loss_weight=0.75)))
