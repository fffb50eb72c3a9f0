# The IFR side of the HTC demo pair: IFR in each stage's mask tower (as
# htc_r50_ifr_1x.py), everything else the baseline's. HTC lists one mask head
# per stage, so the list is restated with only the types swapped.
_base_ = ['./htc_mbv2_fpn_shapes_baseline.py', '../_base_/ifr_hooks.py']

_loss_mask = dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0)
model = dict(
    roi_head=dict(mask_head=[
        dict(type='IFRHTCMaskHead', with_conv_res=False, num_classes={{_base_.num_classes}},
             loss_mask=_loss_mask),
        dict(type='IFRHTCMaskHead', num_classes={{_base_.num_classes}}, loss_mask=_loss_mask),
        dict(type='IFRHTCMaskHead', num_classes={{_base_.num_classes}}, loss_mask=_loss_mask),
    ]))
