# Multi-scale training on YouTube-VIS (paper Table 4, "MST"): each training
# clip's key and reference frame resized together to a random scale between
# (640, 360) and (960, 480), the range of SipMask's VIS code (its "(649, 360)"
# read as 640); testing stays at (640, 360). A config inherits this beside its
# model and sets `train_dataloader = dict(dataset=dict(pipeline=mst_train_pipeline))`.
mst_train_pipeline = [
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
