from .ifr_masktrack_rcnn import IFRMaskTrackRCNN
from .ifr_sipmask_vis import IFRSipMaskVIS
from .sipmask_vis import SipMaskVIS
from .video_warm_start_mixin import VideoWarmStartMixin

__all__ = ['IFRMaskTrackRCNN', 'IFRSipMaskVIS', 'SipMaskVIS', 'VideoWarmStartMixin']
