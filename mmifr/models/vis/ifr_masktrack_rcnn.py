"""MaskTrack R-CNN whose IFR mask head warm-starts from frame to frame."""
from mmdet.models.vis import MaskTrackRCNN
from mmdet.registry import MODELS
from .video_warm_start_mixin import VideoWarmStartMixin


@MODELS.register_module()
class IFRMaskTrackRCNN(VideoWarmStartMixin, MaskTrackRCNN):
    """mmdet's ``MaskTrackRCNN`` with :class:`VideoWarmStartMixin`: each mask
    RoI's solve starts from the equilibrium of the previous frame's RoI whose
    feature is nearest. The mask head runs before the tracker, so the match
    is made on the RoI features, not on track ids. Same weights and
    checkpoints as ``MaskTrackRCNN``.

    Args:
        warm_start (dict, optional): see :class:`VideoWarmStartMixin`.
        *args, **kwargs: arguments of mmdet's ``MaskTrackRCNN``.
    """
