"""WeightSharedFCNMaskHead: mmdet's ``FCNMaskHead`` with one conv shared by
its whole tower (the paper's Table 1, "4*", and Fig. 1 (b), (c))."""
from mmengine.model import ModuleList

from mmdet.models import FCNMaskHead
from mmdet.registry import MODELS
from mmifr.models.layers import PredictorInitMixin, WeightSharedConvStack


@MODELS.register_module()
class WeightSharedFCNMaskHead(PredictorInitMixin, FCNMaskHead):
    """FCN mask head whose ``num_convs`` 3x3 convs share one set of weights.

    The step between the stock head (``num_convs`` independent convs) and
    IFR (one block iterated to its fixed point): the paper's Table 1 finds
    four shared convs as good as four independent ones, with the parameters
    of one. Upsampling, predictor, loss and inference are mmdet's.

    Input ``(N, in_channels, 14, 14)`` RoI features; output
    ``(N, num_classes, 28, 28)`` mask logits. With the defaults (4 shared
    convs, 256 channels, 80 classes) 0.87 M parameters, against 2.64 M.

    Args:
        shortcut (bool): the skip connection of Fig. 1 (c) around each
            application of the shared conv. Default: False (Table 1, Fig. 1 (b)).
        predictor_init_std (float, optional): see
            :class:`~mmifr.models.layers.PredictorInitMixin`; ``None`` keeps
            mmdet's init (the Table 1 configs, whose other rows are mmdet's
            own head). Default: 0.001.
        *args, **kwargs: arguments of mmdet's ``FCNMaskHead``; ``in_channels``
            must equal ``conv_out_channels``.
    """
    init_predictors = ('conv_logits', )

    def __init__(self, *args, shortcut: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.num_convs < 1:
            raise ValueError(f'WeightSharedFCNMaskHead: num_convs must be >= 1 (the times the '
                             f'shared conv is applied), got {self.num_convs}')
        if self.in_channels != self.conv_out_channels:
            raise ValueError(
                f'WeightSharedFCNMaskHead: in_channels ({self.in_channels}) must equal '
                f'conv_out_channels ({self.conv_out_channels}) for one conv to be reused')
        # mmdet's forward loops over self.convs: one stack in a list keeps it.
        self.convs = ModuleList(
            [WeightSharedConvStack(self.convs[0], self.num_convs, shortcut=shortcut)])
