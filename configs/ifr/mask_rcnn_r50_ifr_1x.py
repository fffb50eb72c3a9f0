_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', './_base_/ifr_runtime.py']

# The refiner's settings are its defaults, spelled out because the ablations
# in ablations/ change them one at a time.
model = dict(
    roi_head=dict(
        mask_head=dict(
            type='IFRConvFCMaskHead',
            ifr_cfg=dict(
                type='IFRRefiner',
                mode='deq',
                num_steps=4,
                block=dict(type='DoubleResidualBlock', mid_channels=256, form='bounded'),
                solver=dict(solver='broyden', max_iter=15, tol=1e-3, backward_max_iter=15)))))
