# A candidate of the IFR vs stock study (docs/ifr_vs_stock_head.md): the
# block's two convs left at nn.Conv2d's own init, as in the released code,
# instead of Kaiming (fan_out). Each conv is followed by GroupNorm, so its
# scale does not change the forward; under AdamW it sets how fast the
# convs turn: the update per step is ~lr per weight, so 2.5x smaller weights
# (std 0.012 vs 0.029) turn 2.5x faster.
_base_ = './mask-rcnn_mbv2_fpn_shapes_ifr.py'

model = dict(
    roi_head=dict(
        mask_head=dict(
            ifr_cfg=dict(
                type='IFRRefiner', block=dict(type='DoubleResidualBlock', conv_init='pytorch')))))
