from .ifr_sipmask_track_head import IFRSipMaskTrackHead
from .sipmask_track_head import SipMaskTrackHead

__all__ = ['SipMaskTrackHead', 'IFRSipMaskTrackHead']
