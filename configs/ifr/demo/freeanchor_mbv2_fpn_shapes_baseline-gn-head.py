# The stock FreeAnchor demo with GroupNorm in its towers: the control column
# of the FreeAnchor row (see retinanet_mbv2_fpn_shapes_baseline-gn-head.py).
_base_ = './freeanchor_mbv2_fpn_shapes_baseline.py'

model = dict(bbox_head=dict(norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)))
