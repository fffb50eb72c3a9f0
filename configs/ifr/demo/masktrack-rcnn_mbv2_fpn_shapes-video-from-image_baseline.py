# The video demo's MaskTrack R-CNN (baseline side) with its detector started from
# the image demo's trained Mask R-CNN of the same head, as the official recipe
# starts from a COCO-trained one; the track head starts fresh. Each side starts
# from its own image model, so the pair still differs only in the mask tower.
#
# Prerequisite: `make demo` (writes the checkpoint below), and
#   python tools/dataset_converters/make_shapes_video_dataset.py --out data/shapes_video
_base_ = './masktrack-rcnn_mbv2_fpn_shapes-video_baseline.py'

model = dict(
    detector=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/demo/mask_rcnn_mbv2_shapes/baseline/iter_450.pth')))
