# Fig. 1 (c): the "4*" head of Table 1 with a skip connection around each of
# the four applications of its shared conv (no number in the paper).
_base_ = './mask_rcnn_r50_convs4-shared_1x.py'

model = dict(roi_head=dict(mask_head=dict(shortcut=True)))
