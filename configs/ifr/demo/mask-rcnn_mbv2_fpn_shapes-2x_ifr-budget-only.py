# The 900-iteration demo pair's IFR side with the fixed budget alone (2 block
# evaluations in training and inference, the stock tower's cost; as
# ./mask-rcnn_mbv2_fpn_shapes_ifr-budget-only.py): the candidate default of
# docs/ifr_default_at_2x.md.
_base_ = './mask-rcnn_mbv2_fpn_shapes-2x_ifr.py'

model = dict(roi_head=dict(mask_head=dict(ifr_cfg=dict(budget=2))))
