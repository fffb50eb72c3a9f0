from .blendmask import BlendMask
from .meinst import MEInst
from .sipmask import SipMask

__all__ = ['BlendMask', 'MEInst', 'SipMask']
