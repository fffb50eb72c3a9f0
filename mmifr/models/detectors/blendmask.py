"""BlendMask: the single-stage instance segmentor."""
from mmdet.models.detectors.single_stage_instance_seg import SingleStageInstanceSegmentor
from mmdet.registry import MODELS


@MODELS.register_module()
class BlendMask(SingleStageInstanceSegmentor):
    """BlendMask (Chen et al., CVPR 2020): an FCOS box head that predicts a
    per-location attention (mmdet's ``CondInstBboxHead`` with
    ``num_params = K * M * M``) and a :class:`BlendMaskHead` (bases and
    blender), run as mmdet runs CondInst."""
