# MaskTrack R-CNN R-50 1x with multi-scale training (paper Table 4, "MST":
# 30.5 mask AP; mmdet 3.3 has no such config): mmdet's config with each
# training clip resized to a random scale between (640, 360) and (960, 480),
# the range of SipMask's VIS code (its "(649, 360)" read as 640), key and
# reference frame alike. Testing stays at (640, 360).
_base_ = 'mmdet::masktrack_rcnn/masktrack-rcnn_mask-rcnn_r50_fpn_8xb1-12e_youtubevis2019.py'

train_pipeline = [
    dict(type='UniformRefFrameSample', num_ref_imgs=1, frame_range=100, filter_key_img=True),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadTrackAnnotations', with_mask=True),
            dict(type='RandomResize', scale=[(640, 360), (960, 480)], keep_ratio=True),
            dict(type='RandomFlip', prob=0.5),
        ]),
    dict(type='PackTrackInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
