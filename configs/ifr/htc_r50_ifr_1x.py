# HTC lists one mask head per stage, so the list is restated; only the type
# differs from mmdet's. The refined feature of each stage is the res_feat
# passed to the next (HTC's mask information flow).
_base_ = ['mmdet::htc/htc_r50_fpn_1x_coco.py', './_base_/ifr_runtime.py']

_loss_mask = dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0)
model = dict(
    roi_head=dict(mask_head=[
        dict(type='IFRHTCMaskHead', with_conv_res=False, num_classes=80, loss_mask=_loss_mask),
        dict(type='IFRHTCMaskHead', num_classes=80, loss_mask=_loss_mask),
        dict(type='IFRHTCMaskHead', num_classes=80, loss_mask=_loss_mask),
    ]))
