"""SmallInitFCNMaskHead: mmdet's stock ``FCNMaskHead`` with the IFR mask
heads' predictor init, the stock side of a like-for-like comparison."""
from mmdet.models import FCNMaskHead
from mmdet.registry import MODELS
from mmifr.models.layers import PredictorInitMixin


@MODELS.register_module()
class SmallInitFCNMaskHead(PredictorInitMixin, FCNMaskHead):
    """mmdet's ``FCNMaskHead`` (its convs, upsample, loss and inference
    untouched) whose ``conv_logits`` starts ~ N(0, 0.001), as the one of
    :class:`~mmifr.models.roi_heads.IFRConvFCMaskHead` does.

    The predictor is a part both heads share; with this head the stock and
    IFR mask heads differ in their tower only, which is what a comparison of
    the two must hold fixed (the demo pairs use it).

    Args:
        predictor_init_std (float, optional): see
            :class:`~mmifr.models.layers.PredictorInitMixin`.
        *args, **kwargs: arguments of mmdet's ``FCNMaskHead``.
    """
    init_predictors = ('conv_logits', )
