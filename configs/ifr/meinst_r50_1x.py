# MEInst R-50 1x (Zhang et al., CVPR 2020) on mmdet's CondInst R-50 recipe
# (the same FCOS box head settings: center sampling, GIoU, normalised
# targets, centerness on the regression tower; multi-scale 640-800, 90k
# iterations). The mask tower (4 GN convs) predicts 60 PCA coefficients of a
# 28x28 box-cropped mask per location; MSE loss weighted by centerness. Paper
# Table 3: 31.6 mask AP (the stock side of meinst_r50_ifr_1x.py).
#
# Fit the PCA first (it is then saved in every checkpoint):
#   python tools/analysis_tools/fit_meinst_pca.py \
#       data/coco/annotations/instances_train2017.json --out data/coco/meinst_pca_60.pth
# Left out of the official recipe: DCNv1 in the last conv of each tower, and
# its single-scale (800) training.
_base_ = 'mmdet::condinst/condinst_r50_fpn_ms-poly-90k_coco_instance.py'

custom_imports = dict(imports=['mmifr'], allow_failed_imports=False)
model = dict(
    type='MEInst',
    bbox_head=dict(type='MEInstBboxHead', num_params=60),
    mask_head=dict(
        _delete_=True,
        type='MEInstMaskHead',
        mask_coder=dict(
            type='PCAMaskCoder', dim=60, mask_size=28, pca_file='data/coco/meinst_pca_60.pth'),
        loss_mask=dict(type='MSELoss', loss_weight=1.0)))
