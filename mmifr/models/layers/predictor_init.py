"""The init of the predictors that read a refined feature."""
from typing import Optional, Tuple

from torch import nn

#: Std of the mask predictor of detectron2's and the released IFR code's mask
#: heads; mmifr uses it for every predictor listed in ``init_predictors``.
PREDICTOR_INIT_STD = 0.001


class PredictorInitMixin:
    """Initialise the weights of a head's predictors ~ N(0, std) after
    mmdet's own init; biases keep mmdet's init (0, or the prior-probability
    bias of a focal-loss classifier).

    mmdet sizes a predictor's init for the stock tower in front of it. A
    tower without norm layers keeps (FCN mask head, Kaiming) or shrinks
    (RetinaNet, N(0, 0.01)) the scale of its input, while the IFR refiner
    ends in GroupNorm, unit scale per group, whatever its input. Under mmdet's
    init the IFR predictors therefore start far from where mmdet meant them:

    ======================  ============  =============  ======================
    head (demo / COCO cfg)  tower output  IFR output     predictor output
    ======================  ============  =============  ======================
    FCN mask head           rms 0.47      rms 1.0        logit std 2.6 -> 5.5;
                                                         loss 1.3 -> 2.2 (ln 2
                                                         = 0.69 is uninformed)
    RetinaNet cls / reg     rms 0.007     rms 1.0        std 0.003 -> 0.47
    ======================  ============  =============  ======================

    A near-zero predictor starts every tower at mmdet's intended output (0,
    or the prior), whatever the tower's scale; detectron2 and the released
    IFR code initialise their mask predictors this way. Heads with GroupNorm
    towers (FCOS, RepPoints, SOLO, CondInst: tower rms ~0.7 against IFR's
    1.0) do not need it and keep mmdet's init.

    A class lists the attribute paths of its predictors in
    ``init_predictors`` (a path may name an ``nn.ModuleList`` of them).

    Args:
        predictor_init_std (float, optional): std of the predictors'
            weights; ``None`` keeps mmdet's init. Default:
            :data:`PREDICTOR_INIT_STD`.
    """
    init_predictors: Tuple[str, ...] = ()

    def __init__(self, *args, predictor_init_std: Optional[float] = PREDICTOR_INIT_STD,
                 **kwargs) -> None:
        if predictor_init_std is not None and (isinstance(predictor_init_std, bool)
                                               or not isinstance(predictor_init_std, (int, float))
                                               or not predictor_init_std > 0):
            raise ValueError(
                f'predictor_init_std must be a positive float or None, got {predictor_init_std!r}')
        super().__init__(*args, **kwargs)
        self.predictor_init_std = predictor_init_std

    def init_weights(self) -> None:
        super().init_weights()
        if self.predictor_init_std is None:
            return
        for path in self.init_predictors:
            module = self.get_submodule(path)
            for layer in (module if isinstance(module, nn.ModuleList) else [module]):
                nn.init.normal_(layer.weight, std=self.predictor_init_std)
