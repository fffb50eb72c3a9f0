"""Small fixed-point blocks and call recorders shared by the ``mmifr.ops`` tests.

The blocks are contractive by construction (their Lipschitz constant in ``h``
is bounded by ``contraction``), so every solver has a unique fixed point to
find and ``I - df/dh`` is invertible, which the gradient tests rely on.

They are handed out through fixtures (``tests/`` is not a package, so test
modules do not import from here).
"""
from typing import List, Optional

import pytest
import torch
from torch import Tensor, nn


class TanhBlock(nn.Module):
    """``f(h, x) = tanh(h W^T + x U^T + b)`` with ``||W||_2 = contraction``.

    ``tanh`` is 1-Lipschitz, so ``contraction`` bounds the Lipschitz constant
    of ``f`` in ``h``; ``scale`` shrinks ``U x + b`` so that ``tanh`` stays
    near-linear and the contraction is close to the bound (a slow problem).

    Args:
        dim (int): feature size ``D``; ``h`` and ``x`` are ``(B, D)``.
        contraction (float): spectral norm of ``W``.
        scale (float): scale of the injection ``U x + b``.
        bias (bool): whether ``b`` exists; without it, ``x = 0`` makes
            ``h = 0`` an exact fixed point.
        dtype (torch.dtype): parameter dtype.
        seed (int): seed of the parameter generator.
    """

    def __init__(self,
                 dim: int = 6,
                 contraction: float = 0.5,
                 scale: float = 1.0,
                 bias: bool = True,
                 dtype: torch.dtype = torch.float64,
                 seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        w = torch.randn(dim, dim, generator=gen, dtype=dtype)
        self.weight = nn.Parameter(contraction * w / torch.linalg.matrix_norm(w, 2))
        self.inject = nn.Parameter(scale * torch.randn(dim, dim, generator=gen, dtype=dtype) /
                                   dim**0.5)
        self.bias = nn.Parameter(scale * torch.randn(dim, generator=gen, dtype=dtype)) \
            if bias else None

    def forward(self, h: Tensor, x: Tensor) -> Tensor:
        """``(B, D), (B, D) -> (B, D)``."""
        out = h @ self.weight.T + x @ self.inject.T
        if self.bias is not None:
            out = out + self.bias
        return torch.tanh(out)


class ConvBlock(nn.Module):
    """A tiny spatial block ``f(h, x) = tanh(conv_h(h) + conv_x(x))``.

    Works on ``(B, C, H, W)`` maps, like the RoI features of IFR. The
    operator norm of a zero-padded conv is at most the sum over kernel taps of
    the taps' spectral norms, which is rescaled to ``contraction``.

    Args:
        channels (int): ``C``.
        contraction (float): bound on the Lipschitz constant in ``h``.
        dtype (torch.dtype): parameter dtype.
        seed (int): seed of the parameter generator.
    """

    def __init__(self,
                 channels: int = 2,
                 contraction: float = 0.5,
                 dtype: torch.dtype = torch.float64,
                 seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.conv_h = nn.Conv2d(channels, channels, 3, padding=1, bias=False, dtype=dtype)
        self.conv_x = nn.Conv2d(channels, channels, 3, padding=1, dtype=dtype)
        with torch.no_grad():
            for param in (self.conv_h.weight, self.conv_x.weight, self.conv_x.bias):
                param.copy_(torch.randn(param.shape, generator=gen, dtype=dtype))
            taps = self.conv_h.weight.permute(2, 3, 0, 1)  # (3, 3, C, C)
            bound = torch.linalg.matrix_norm(taps, 2).sum()
            self.conv_h.weight.mul_(contraction / bound)
            self.conv_x.weight.mul_(0.3)

    def forward(self, h: Tensor, x: Tensor) -> Tensor:
        """``(B, C, H, W), (B, C, H, W) -> (B, C, H, W)``."""
        return torch.tanh(self.conv_h(h) + self.conv_x(x))


class Recorder:
    """Wraps a block and keeps what it was called with.

    Works for both calling conventions: the op's ``f(h, x)`` and the solvers'
    ``func(z, index)`` (then ``x`` is the index tensor).

    Attributes:
        inputs (list[Tensor]): detached copies of the first argument per call.
        seconds (list[Tensor]): detached copies of the second argument.
        outputs (list[Tensor]): detached copies of the results.
    """

    def __init__(self, func) -> None:
        self.func = func
        self.inputs: List[Tensor] = []
        self.seconds: List[Tensor] = []
        self.outputs: List[Tensor] = []

    def __call__(self, first: Tensor, second: Tensor) -> Tensor:
        out = self.func(first, second)
        self.inputs.append(first.detach().clone())
        self.seconds.append(second.detach().clone())
        self.outputs.append(out.detach().clone())
        return out

    @property
    def rows(self) -> List[int]:
        """Rows passed per call."""
        return [t.shape[0] for t in self.inputs]

    def dtypes(self) -> List[torch.dtype]:
        return [t.dtype for t in self.inputs]

    def first_input(self) -> Optional[Tensor]:
        return self.inputs[0] if self.inputs else None


@pytest.fixture
def tanh_block():
    """The :class:`TanhBlock` class (call it with the options you need)."""
    return TanhBlock


@pytest.fixture
def conv_block():
    """The :class:`ConvBlock` class."""
    return ConvBlock


@pytest.fixture
def recorder():
    """The :class:`Recorder` class."""
    return Recorder
