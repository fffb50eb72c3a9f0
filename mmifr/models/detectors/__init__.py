from .blendmask import BlendMask
from .meinst import MEInst

__all__ = ['BlendMask', 'MEInst']
