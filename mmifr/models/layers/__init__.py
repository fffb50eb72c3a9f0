from .double_residual_block import DoubleResidualBlock
from .feature_align import FeatureAlign
from .fixed_point_initializer import FixedPointInitializer
from .ifr_refiner import IFRRefiner
from .ifr_tower import IFRTowerMixin
from .predictor_init import PREDICTOR_INIT_STD, PredictorInitMixin
from .warm_start import WARM_START_DEFAULTS, WarmStartMemory, check_warm_start
from .weight_shared_conv_stack import WeightSharedConvStack

__all__ = [
    'DoubleResidualBlock', 'FeatureAlign', 'FixedPointInitializer', 'IFRRefiner', 'IFRTowerMixin',
    'PREDICTOR_INIT_STD', 'PredictorInitMixin', 'WARM_START_DEFAULTS', 'WarmStartMemory',
    'WeightSharedConvStack', 'check_warm_start'
]
