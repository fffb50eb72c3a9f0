# The stock RetinaNet demo with GroupNorm in its towers (mmdet's ``norm_cfg``
# of RetinaHead, as its FCOS and ATSS heads have): the control column of the
# RetinaNet row. mmdet's stock towers have no normalisation and the IFR block
# ends in GroupNorm, so the stock / IFR pair also compares "normalised or not";
# this control separates that from the refinement. The IFR side is unchanged.
_base_ = './retinanet_mbv2_fpn_shapes_baseline.py'

model = dict(bbox_head=dict(norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)))
