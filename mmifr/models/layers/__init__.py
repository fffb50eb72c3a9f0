from .double_residual_block import DoubleResidualBlock
from .ifr_refiner import IFRRefiner
from .ifr_tower import IFRTowerMixin

__all__ = ['DoubleResidualBlock', 'IFRRefiner', 'IFRTowerMixin']
