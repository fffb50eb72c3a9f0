from .hooks import IFRAuxLossHook, IFRSolverStatsHook, IFRUnrollWarmupHook
from .optimizers import DeviceAmpOptimWrapper  # noqa: F401

__all__ = ['IFRAuxLossHook', 'IFRSolverStatsHook', 'IFRUnrollWarmupHook']
