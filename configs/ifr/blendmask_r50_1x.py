# BlendMask R-50 1x (Chen et al., CVPR 2020) on mmdet's CondInst R-50 recipe
# (FCOS box head, multi-scale 640-800, 90k iterations): the box head's
# regression tower predicts a 4 x 14 x 14 attention per location (mmdet's
# CondInstBboxHead, num_params = 784), the bottom module 4 bases at stride 4
# from P3-P5 (plus an auxiliary semantic loss), and the blender mixes the
# bases RoI-aligned at 56 x 56. Paper Table 3: 35.8 mask AP (the stock side
# of blendmask_r50_ifr_1x.py). Left out of the official recipe: SyncBN in the
# bottom module (BN here; set norm_cfg for multi-GPU runs), FCOS without the
# learnt per-level scales and with the centerness in the score threshold.
_base_ = 'mmdet::condinst/condinst_r50_fpn_ms-poly-90k_coco_instance.py'

custom_imports = dict(imports=['mmifr'], allow_failed_imports=False)
num_bases, attn_size = 4, 14
model = dict(
    type='BlendMask',
    bbox_head=dict(type='CondInstBboxHead', num_params=num_bases * attn_size * attn_size),
    mask_head=dict(
        _delete_=True,
        type='BlendMaskHead',
        in_channels=256,
        in_levels=(0, 1, 2),
        feat_channels=128,
        num_convs=3,
        num_bases=num_bases,
        attn_size=attn_size,
        bottom_resolution=56,
        num_classes=80,
        loss_semantic=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.3)))
