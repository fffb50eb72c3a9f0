"""Utilities: safe checkpoint loading and CPU-distributed set-up.

Importing this package (which ``import mmifr`` does) allow-lists the globals
that MMEngine checkpoints contain, so that resuming works with PyTorch >= 2.6,
whose ``torch.load`` defaults to ``weights_only=True``; see
:mod:`mmifr.utils.checkpoint` for why this is an allow-list.
"""
from .checkpoint import checkpoint_safe_globals, register_checkpoint_safe_globals
from .dist import setup_cpu_distributed, teardown_distributed

register_checkpoint_safe_globals()

__all__ = ['checkpoint_safe_globals', 'register_checkpoint_safe_globals', 'setup_cpu_distributed',
           'teardown_distributed']
