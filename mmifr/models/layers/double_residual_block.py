"""The transformation ``F(H; X)`` of IFR: a residual block with double residual."""
import torch
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.nn.utils import parametrizations

from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig

FORMS = ('bounded', 'literal', 'plain')
CONV_INITS = ('kaiming', 'pytorch')


@MODELS.register_module()
class DoubleResidualBlock(BaseModule):
    """``F(H; X)`` of the paper (Sec. 3.3), with ``R = H + X``.

    Forms (``form``):

    * ``'bounded'`` (default, the released reference code):
      ``GN3(relu(W2(relu(W1(R))) + R))``. The trailing ReLU and GroupNorm keep
      every output at unit scale per group, so the map has a bounded fixed
      point that plain iteration reaches.
    * ``'literal'``: Eq. 5 as printed, ``W2(relu(W1(R))) + R``. Its Jacobian is
      ``I + J_W``, so iterates grow without bound; kept as a documented
      ablation only.
    * ``'plain'``: no shortcut around the convs, ``GN3(relu(W2(relu(W1(R)))))``
      (Table 8's "without double residual"; the injection ``H + X`` is kept
      because without it the equilibrium would not depend on ``X``).

    ``W1``/``W2`` are 3x3 convs (weight norm, no bias) each followed by
    GroupNorm. Samples never interact, so a DEQ solver may stop each one on
    its own.

    Args:
        channels (int): channels of ``H`` and ``X``. Default: 256.
        mid_channels (int, optional): channels between ``W1`` and ``W2``
            (Table 9); ``channels`` by default.
        norm_cfg (dict): norm after each conv. Default: GN with 4 groups.
        form (str): ``'bounded'``, ``'literal'`` or ``'plain'``.
        weight_norm (bool): weight-normalise the convs (paper Sec. 4.2).
        conv_init (str): init of ``W1``/``W2``: ``'kaiming'`` (normal,
            ``fan_out``, as Mask R-CNN's mask head; the paper's Sec. 4.2) or
            ``'pytorch'`` (``nn.Conv2d``'s own, what the released code
            leaves them at).
        branch_gain_init (float): initial gain (GroupNorm weight) of the
            norm that ends the conv branch, ``norm2``: how strongly
            ``W2(relu(W1(R)))`` enters the sum with ``R`` at the start.
            1 is the paper's; 0 is mmdet's ``zero_init_residual`` (the
            block starts as the pointwise ``GN3(relu(H + X))``). Values
            below 1 start the fixed point better conditioned and more local,
            but with a weaker refinement (0.5 trained worse on the demo:
            row 10 of docs/ifr_vs_stock_head.md). Default: 1.
        out_gain_init (float): initial gain (GroupNorm weight) of ``norm3``,
            the norm that ends the block: the scale, per group, of the
            refined feature the head's next layer reads (1 is the paper's).
            A stock tower of ConvModules ends in a ReLU after its norm, rms
            ~0.7 (``sqrt(1/2)``) where the block's output has rms 1; the
            same value reproduces the tower's scale (and the gradient it
            passes back); it did not help CondInst on the demo
            (docs/condinst_ifr_vs_stock.md). Not used by ``form='literal'``
            (no ``norm3``). Default: 1.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 channels: int = 256,
                 mid_channels: int = None,
                 norm_cfg: ConfigType = dict(type='GN', num_groups=4, requires_grad=True),
                 form: str = 'bounded',
                 weight_norm: bool = True,
                 conv_init: str = 'kaiming',
                 branch_gain_init: float = 1.0,
                 out_gain_init: float = 1.0,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if form not in FORMS:
            raise ValueError(f'form={form!r} is not supported; allowed values: {list(FORMS)}')
        if conv_init not in CONV_INITS:
            raise ValueError(
                f'conv_init={conv_init!r} is not supported; allowed values: {list(CONV_INITS)}')
        for name, gain in (('branch_gain_init', branch_gain_init),
                           ('out_gain_init', out_gain_init)):
            if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not gain >= 0:
                raise ValueError(f'{name} must be a float >= 0, got {gain!r}')
        if form == 'literal' and out_gain_init != 1:
            raise ValueError(f"out_gain_init={out_gain_init!r} sets norm3, which form='literal' "
                             'does not have')
        mid_channels = mid_channels or channels
        for name, value in (('channels', channels), ('mid_channels', mid_channels)):
            groups = norm_cfg.get('num_groups', 1)
            if value % groups:
                raise ValueError(f'{name}={value} is not divisible by the GroupNorm '
                                 f'num_groups={groups}')
        self.channels = channels
        self.form = form
        self.weight_norm = weight_norm
        self.conv_init = conv_init
        self.branch_gain_init = float(branch_gain_init)
        self.out_gain_init = float(out_gain_init)
        self.conv1 = nn.Conv2d(channels, mid_channels, 3, padding=1, bias=False)
        self.norm1 = build_norm_layer(norm_cfg, mid_channels)[1]
        self.conv2 = nn.Conv2d(mid_channels, channels, 3, padding=1, bias=False)
        self.norm2 = build_norm_layer(norm_cfg, channels)[1]
        self.norm3 = build_norm_layer(norm_cfg, channels)[1] if form != 'literal' else None
        if weight_norm:
            parametrizations.weight_norm(self.conv1)
            parametrizations.weight_norm(self.conv2)

    def init_weights(self) -> None:
        """Kaiming init as in Mask R-CNN's mask head (paper Sec. 4.2), or
        ``nn.Conv2d``'s own for ``conv_init='pytorch'``."""
        super().init_weights()
        if self.norm2.weight is not None:
            nn.init.constant_(self.norm2.weight, self.branch_gain_init)
        if self.norm3 is not None and self.norm3.weight is not None:
            nn.init.constant_(self.norm3.weight, self.out_gain_init)
        if self.conv_init == 'pytorch':
            # Weight norm was applied to the construction-time draw already.
            return
        for conv in (self.conv1, self.conv2):
            weight = torch.empty_like(conv.weight)
            nn.init.kaiming_normal_(weight, mode='fan_out', nonlinearity='relu')
            if self.weight_norm:
                # Direction v = weight, per-channel magnitude g = ||weight||,
                # so the effective weight is exactly the Kaiming draw.
                conv.parametrizations.weight.original1.data.copy_(weight)
                conv.parametrizations.weight.original0.data.copy_(
                    weight.flatten(1).norm(dim=1).view(-1, 1, 1, 1))
            else:
                conv.weight.data.copy_(weight)

    def forward(self, h: Tensor, x: Tensor) -> Tensor:
        """Apply ``F`` once.

        Args:
            h (Tensor): ``(N, C, H, W)`` hidden state.
            x (Tensor): ``(N, C, H, W)`` injected input feature.

        Returns:
            Tensor: ``(N, C, H, W)`` the next hidden state.
        """
        r = h + x
        # In-place ReLUs and sum act on fresh GroupNorm / sum outputs that
        # nothing else reads (GroupNorm's backward needs its input, not its
        # output); on CPU every fresh (N, C, H, W) buffer costs page faults.
        out = self.norm2(self.conv2(torch.relu_(self.norm1(self.conv1(r)))))
        if self.form == 'literal':
            return out + r
        if self.form == 'bounded':
            out = out.add_(r)
        return self.norm3(torch.relu_(out))
