from .hooks import IFRSolverStatsHook, IFRUnrollWarmupHook
from .optimizers import DeviceAmpOptimWrapper  # noqa: F401

__all__ = ['IFRSolverStatsHook', 'IFRUnrollWarmupHook']
