# SipMask R-50 (Cao et al., ECCV 2020), image version, on mmdet's CondInst R-50
# recipe (the same FCOS settings, multi-scale 640-800, 90k iterations): one
# head predicts boxes and, per positive, 2 x 2 x 32 coefficients of 32 basis
# masks made from its regression tower (SipMaskHead). The building block of
# the video SipMask of the paper's Table 4 (its tracking branch is not ported
# yet); the IFR paper reports no image SipMask number.
_base_ = 'mmdet::condinst/condinst_r50_fpn_ms-poly-90k_coco_instance.py'

custom_imports = dict(imports=['mmifr'], allow_failed_imports=False)
sipmask = _base_.model
sipmask.pop('mask_head')
sipmask.type = 'SipMask'
sipmask.bbox_head.type = 'SipMaskHead'
sipmask.bbox_head.pop('num_params')  # SipMaskHead's: num_cells**2 * num_bases
sipmask.bbox_head.update(num_bases=32, num_cells=2, num_basis_levels=3, basis_channels=512)
del _base_.model
model = sipmask
del sipmask
