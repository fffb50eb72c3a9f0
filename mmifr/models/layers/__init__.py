from .double_residual_block import DoubleResidualBlock
from .feature_align import FeatureAlign
from .fixed_point_initializer import FixedPointInitializer
from .ifr_refiner import IFRRefiner
from .ifr_tower import IFRTowerMixin
from .predictor_init import PREDICTOR_INIT_STD, PredictorInitMixin
from .weight_shared_conv_stack import WeightSharedConvStack

__all__ = [
    'DoubleResidualBlock', 'FeatureAlign', 'FixedPointInitializer', 'IFRRefiner', 'IFRTowerMixin',
    'PREDICTOR_INIT_STD', 'PredictorInitMixin', 'WeightSharedConvStack'
]
