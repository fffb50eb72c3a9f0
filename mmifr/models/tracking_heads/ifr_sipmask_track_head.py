"""SipMask's tracking branch with implicit feature refinement."""
from mmdet.registry import MODELS
from mmifr.models.layers import IFRTowerMixin
from .sipmask_track_head import SipMaskTrackHead


@MODELS.register_module()
class IFRSipMaskTrackHead(IFRTowerMixin, SipMaskTrackHead):
    """:class:`SipMaskTrackHead` with IFR in place of its ``track_convs``.

    Not the paper's default: its Table 4 row replaces the towers that refine
    the instance features of the box head (:class:`IFRSipMaskHead`); the
    tracking convs make an embedding and stay stacked there. This head is
    the other choice, for a config that wants IFR on every tower.

    Args:
        ifr_cfg (dict): config of the refiner.
        *args, **kwargs: arguments of :class:`SipMaskTrackHead`.
    """
    ifr_towers = ('track_convs', )
