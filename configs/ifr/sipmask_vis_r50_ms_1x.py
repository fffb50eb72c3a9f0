# SipMask R-50 1x (video) with multi-scale training (paper Table 4, "MST": 33.7
# mask AP): key and reference frame resized together to a random scale between
# (640, 360) and (960, 480), as masktrack_rcnn_r50_ms_1x.py; testing at (640, 360).
_base_ = './sipmask_vis_r50_1x.py'

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
