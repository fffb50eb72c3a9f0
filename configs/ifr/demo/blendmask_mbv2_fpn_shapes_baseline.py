# BlendMask on the CPU demo: the MEInst demo's detector (MobileNetV2, FPN
# P3-P7 at 128 channels, FCOS head, demo data and schedule) with BlendMask's
# attention (4 x 14 x 14 per location, from the regression tower) and
# BlendMaskHead (bases at stride 4 from P3-P5, blender at 56 x 56).
_base_ = './meinst_mbv2_fpn_shapes_baseline.py'

num_bases, attn_size = 4, 14
model = dict(
    type='BlendMask',
    bbox_head=dict(type='CondInstBboxHead', num_params=num_bases * attn_size * attn_size),
    mask_head=dict(
        _delete_=True,
        type='BlendMaskHead',
        in_channels=128,
        in_levels=(0, 1, 2),
        feat_channels=128,
        num_convs=3,
        num_bases=num_bases,
        attn_size=attn_size,
        bottom_resolution=56,
        num_classes={{_base_.num_classes}}))
