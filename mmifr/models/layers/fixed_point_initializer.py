"""A learned initial guess of the IFR solve (Bai, Koltun, Kolter, ICLR 2022)."""
import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet.registry import MODELS
from mmdet.utils import OptMultiConfig


@MODELS.register_module()
class FixedPointInitializer(BaseModule):
    """Predicts the equilibrium ``H*`` of a refiner from its input ``X``.

    A solve that starts closer to ``H*`` stops sooner at the same tolerance,
    and finds the same fixed point: the equilibrium, and the implicit
    gradient taken at it, do not depend on the start. The predictor is
    trained beside the model by regressing the solver's ``H*``, both sides
    detached (:meth:`loss`), so it never changes what the model learns.

    ``1x1 conv (C -> mid) -> ReLU -> depthwise 3x3 -> ReLU -> 1x1 conv
    (mid -> C)``: about 3 % of one block evaluation's multiply-adds at the
    default sizes. The last conv starts at zero, so an untrained initialiser
    gives the paper's ``H0 = 0``.

    Args:
        channels (int): channels of ``X`` and ``H``. Default: 256.
        mid_channels (int): width of the predictor. Default: 64.
        loss_weight (float): weight of :meth:`loss` (``loss_ifr_init``).
            Default: 1.0.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 channels: int = 256,
                 mid_channels: int = 64,
                 loss_weight: float = 1.0,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for key, value in (('channels', channels), ('mid_channels', mid_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f'{key} must be a positive int, got {value!r}')
        if isinstance(loss_weight, bool) or not isinstance(loss_weight,
                                                           (int, float)) or not loss_weight > 0:
            raise ValueError(f'loss_weight must be a positive float, got {loss_weight!r}')
        self.loss_weight = float(loss_weight)
        self.reduce = nn.Conv2d(channels, mid_channels, 1)
        self.spatial = nn.Conv2d(mid_channels, mid_channels, 3, padding=1, groups=mid_channels)
        self.expand = nn.Conv2d(mid_channels, channels, 1)

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.zeros_(self.expand.weight)
        nn.init.zeros_(self.expand.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Guess ``H*``.

        Args:
            x (Tensor): ``(N, C, H, W)`` the refiner's (injected) input.

        Returns:
            Tensor: ``(N, C, H, W)`` the initial guess ``H0``.
        """
        # In-place ReLUs act on fresh conv outputs that nothing else reads.
        h = torch.relu_(self.reduce(x))
        return self.expand(torch.relu_(self.spatial(h)))

    def loss(self, guess: Tensor, h_star: Tensor) -> Tensor:
        """``loss_weight`` x the mean squared error of the guess to ``H*``.

        Args:
            guess (Tensor): ``(N, C, H, W)`` :meth:`forward` of a detached
                ``X``.
            h_star (Tensor): ``(N, C, H, W)`` the solver's fixed point; it is
                detached here.

        Returns:
            Tensor: scalar loss (0 for ``N = 0``, still connected to the
            initialiser's weights).
        """
        if guess.numel() == 0:
            return guess.sum()
        return F.mse_loss(guess, h_star.detach()) * self.loss_weight
