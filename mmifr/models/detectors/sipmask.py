"""SipMask: the single-stage instance segmentor."""
from mmdet.models.detectors.single_stage import SingleStageDetector
from mmdet.registry import MODELS


@MODELS.register_module()
class SipMask(SingleStageDetector):
    """SipMask (Cao et al., ECCV 2020): one :class:`SipMaskHead` predicts
    boxes and masks; mmdet's single-stage detector runs it."""
