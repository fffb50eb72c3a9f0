"""SipMask-VIS whose IFR towers warm-start from frame to frame."""
from mmdet.registry import MODELS
from .sipmask_vis import SipMaskVIS
from .video_warm_start_mixin import VideoWarmStartMixin


@MODELS.register_module()
class IFRSipMaskVIS(VideoWarmStartMixin, SipMaskVIS):
    """:class:`SipMaskVIS` with :class:`VideoWarmStartMixin`: each tower's
    solve on each pyramid level starts from that level's equilibrium of the
    previous frame, while the feature size stays the same. Same weights and
    checkpoints as :class:`SipMaskVIS`.

    Args:
        warm_start (dict, optional): see :class:`VideoWarmStartMixin`.
        *args, **kwargs: arguments of :class:`SipMaskVIS`.
    """
