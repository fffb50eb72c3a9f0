"""SipMask's feature alignment: a deformable conv steered by the box."""
from mmcv.ops import DeformConv2d
from torch import Tensor, nn


class FeatureAlign(nn.Module):
    """Re-sample a classification feature where the box regressed at each
    location says the object is (SipMask, Cao et al., ECCV 2020).

    A 1x1 conv maps the ``(B, 4, H, W)`` box distances (detached) to the
    offsets of a 3x3 deformable conv (``deform_groups`` groups), followed by
    GroupNorm and ReLU. The offsets start at zero, so the module starts as a
    plain 3x3 conv.

    Args:
        channels (int): in and out channels.
        deform_groups (int): Default: 4.
        num_groups (int): GroupNorm groups. Default: 32.
    """

    def __init__(self, channels: int, deform_groups: int = 4, num_groups: int = 32) -> None:
        super().__init__()
        self.conv_offset = nn.Conv2d(4, deform_groups * 2 * 3 * 3, 1, bias=False)
        self.conv_adaption = DeformConv2d(channels, channels, 3, padding=1,
                                          deform_groups=deform_groups)
        self.norm = nn.GroupNorm(num_groups, channels)
        self.relu = nn.ReLU(inplace=True)

    def init_weights(self) -> None:
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.normal_(self.conv_adaption.weight, std=0.01)

    def forward(self, x: Tensor, box_distances: Tensor) -> Tensor:
        """``(B, C, H, W)`` features and ``(B, 4, H, W)`` box distances ->
        ``(B, C, H, W)``."""
        offset = self.conv_offset(box_distances.detach())
        return self.relu(self.norm(self.conv_adaption(x, offset)))
