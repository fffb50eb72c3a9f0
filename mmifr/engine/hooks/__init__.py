from .ifr_aux_loss_hook import IFRAuxLossHook
from .ifr_solver_stats_hook import IFRSolverStatsHook, find_refiners
from .ifr_unroll_warmup_hook import IFRUnrollWarmupHook
from .paired_init_hook import PairedInitHook

__all__ = [
    'IFRAuxLossHook', 'IFRSolverStatsHook', 'IFRUnrollWarmupHook', 'PairedInitHook', 'find_refiners'
]
