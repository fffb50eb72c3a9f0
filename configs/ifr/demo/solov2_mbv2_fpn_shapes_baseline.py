# SOLOv2 on the CPU demo: the SOLO demo (data, backbone with its stride-4
# output, FPN P2-P6, level assignment, grids, losses, test settings) with
# mmdet's SOLOv2 (solov2_r50_fpn_ms-3x_coco.py -> solov2_r50_fpn_1x_coco.py):
# SOLOV2Head with its stock 4-conv kernel and category towers at 128 channels
# (the demo budget; 512 in mmdet's) and its mask feature branch at stride 4
# from P2-P5. The IFR side (solov2_mbv2_fpn_shapes_ifr.py) replaces exactly
# the two towers.
#
# Prerequisites and training (from the repository root):
#   python tools/dataset_converters/make_shapes_dataset.py      # data/shapes
#   python tools/model_converters/mobilenetv2_to_mmdet.py       # backbone
#   python tools/train.py configs/ifr/demo/solov2_mbv2_fpn_shapes_baseline.py
_base_ = './solo_mbv2_fpn_shapes_baseline.py'

model = dict(
    type='SOLOv2',
    mask_head=dict(
        type='SOLOV2Head',
        stacked_convs=4,
        mask_feature_head=dict(
            feat_channels=128,
            start_level=0,
            end_level=3,
            # 128 dynamic-kernel channels (256 in mmdet's), halved as the FPN.
            out_channels=128,
            mask_stride=4,
            norm_cfg=dict(type='GN', num_groups=32, requires_grad=True))))
