"""MEInst: the single-stage instance segmentor."""
from mmdet.models.detectors.single_stage_instance_seg import SingleStageInstanceSegmentor
from mmdet.registry import MODELS


@MODELS.register_module()
class MEInst(SingleStageInstanceSegmentor):
    """MEInst (Zhang et al., CVPR 2020): an :class:`MEInstBboxHead` (FCOS
    plus mask coefficients) and an :class:`MEInstMaskHead` (their PCA
    decoding), run as mmdet runs CondInst."""
