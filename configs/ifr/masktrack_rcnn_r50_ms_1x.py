# MaskTrack R-CNN R-50 1x with multi-scale training (paper Table 4, "MST":
# 30.5 mask AP; mmdet 3.3 has no such config): mmdet's config with the MST
# training pipeline of ./_base_/youtube_vis_mst.py.
_base_ = [
    'mmdet::masktrack_rcnn/masktrack-rcnn_mask-rcnn_r50_fpn_8xb1-12e_youtubevis2019.py',
    './_base_/youtube_vis_mst.py'
]

train_dataloader = dict(dataset=dict(pipeline={{_base_.mst_train_pipeline}}))
