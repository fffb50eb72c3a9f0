"""SmallInitHTCMaskHead: mmdet's stock ``HTCMaskHead`` with the IFR mask
heads' predictor init, the stock side of a like-for-like HTC comparison."""
from mmdet.models import HTCMaskHead
from mmdet.registry import MODELS
from mmifr.models.layers import PredictorInitMixin


@MODELS.register_module()
class SmallInitHTCMaskHead(PredictorInitMixin, HTCMaskHead):
    """mmdet's ``HTCMaskHead`` (its convs, residual feature, upsample, loss
    and inference untouched) whose ``conv_logits`` starts ~ N(0, 0.001), as
    the one of :class:`~mmifr.models.roi_heads.IFRHTCMaskHead` does.

    The predictor is a part both heads share; with this head the stock and
    IFR HTC mask heads differ in their tower only, which is what a
    comparison of the two must hold fixed (the HTC demo pair uses it).

    Args:
        predictor_init_std (float, optional): see
            :class:`~mmifr.models.layers.PredictorInitMixin`.
        *args, **kwargs: arguments of mmdet's ``HTCMaskHead``.
    """
    init_predictors = ('conv_logits', )
