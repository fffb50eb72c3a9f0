# SipMask R-50 1x (video) with multi-scale training (paper Table 4, "MST": 33.7
# mask AP): the MST training pipeline of ./_base_/youtube_vis_mst.py, as
# masktrack_rcnn_r50_ms_1x.py.
_base_ = ['./sipmask_vis_r50_1x.py', './_base_/youtube_vis_mst.py']

train_dataloader = dict(dataset=dict(pipeline={{_base_.mst_train_pipeline}}))
