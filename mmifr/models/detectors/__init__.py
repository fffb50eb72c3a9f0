from .meinst import MEInst

__all__ = ['MEInst']
