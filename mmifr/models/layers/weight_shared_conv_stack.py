"""One conv applied several times: the weight-sharing tower of Fig. 1 (b), (c)."""
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor
from torch.nn import functional as F


class WeightSharedConvStack(BaseModule):
    """A ``ConvModule`` applied ``num_repeats`` times with the same weights.

    Without ``shortcut`` this is Fig. 1 (b) of the paper, ``H = f(f(f(f(X))))``
    (Table 1's "4*" row); with it, Fig. 1 (c): each application is a residual
    unit in ResNet's form, ``H_{i+1} = ReLU(norm(conv(H_i)) + H_i)``, so the
    stack can keep the RoI feature it started from.

    Args:
        conv (ConvModule): the shared conv (norm and activation optional); its
            input and output channels must be equal.
        num_repeats (int): how many times it is applied.
        shortcut (bool): add the identity around each application.
            Default: False.

    Shape:
        ``(N, C, H, W)`` in and out.
    """

    def __init__(self, conv: ConvModule, num_repeats: int, shortcut: bool = False) -> None:
        super().__init__()
        if conv.in_channels != conv.out_channels:
            raise ValueError('WeightSharedConvStack: a shared conv maps its output back to its '
                             f'input, so in_channels ({conv.in_channels}) must equal '
                             f'out_channels ({conv.out_channels})')
        if isinstance(num_repeats, bool) or not isinstance(num_repeats, int) or num_repeats < 1:
            raise ValueError(f'WeightSharedConvStack: num_repeats must be a positive int, got '
                             f'{num_repeats!r}')
        self.conv = conv
        self.num_repeats = num_repeats
        self.shortcut = shortcut

    def forward(self, x: Tensor) -> Tensor:
        for _ in range(self.num_repeats):
            if self.shortcut:
                out = self.conv(x, activate=False) + x
                x = F.relu(out) if self.conv.with_activation else out
            else:
                x = self.conv(x)
        return x

    def extra_repr(self) -> str:
        return f'num_repeats={self.num_repeats}, shortcut={self.shortcut}'
