from .hooks import IFRSolverStatsHook, IFRUnrollWarmupHook

__all__ = ['IFRSolverStatsHook', 'IFRUnrollWarmupHook']
