"""The DEQ core: batched root solvers and the fixed-point op (torch only)."""
from .deq import (DEQFixedPoint, DEQFunction, DEQStats, SolverConfig, deq_fixed_point,
                  zero_start)
from .jacobian import jacobian_frobenius
from .solvers import SOLVERS, SolverStats, anderson, broyden, fixed_point, register_solver

__all__ = [
    'DEQFixedPoint', 'DEQFunction', 'DEQStats', 'SolverConfig', 'deq_fixed_point', 'zero_start',
    'jacobian_frobenius', 'SOLVERS', 'SolverStats', 'anderson', 'broyden', 'fixed_point',
    'register_solver'
]
