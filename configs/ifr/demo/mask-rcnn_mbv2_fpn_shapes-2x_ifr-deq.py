# The 900-iteration demo pair's IFR side with the paper's protocol (see
# ./mask-rcnn_mbv2_fpn_shapes_ifr-deq.py): what mmifr trained by default
# before the fixed-budget refiner.
_base_ = './mask-rcnn_mbv2_fpn_shapes-2x_ifr.py'

model = dict(roi_head=dict(mask_head=dict(ifr_cfg=dict(budget=None))))
