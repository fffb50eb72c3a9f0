"""IFRBoundaryPreservingMaskHead: BMask R-CNN's mask head with implicit
feature refinement."""
from typing import Dict

from torch import Tensor

from mmdet.registry import MODELS
from mmifr.models.layers import IFRTowerMixin
from .boundary_preserving_mask_head import BoundaryPreservingMaskHead
from .ifr_conv_fc_mask_head import MASK_HEAD_TEST_SOLVER
from .ifr_mask_loss_mixin import IFRMaskLossMixin


@MODELS.register_module()
class IFRBoundaryPreservingMaskHead(IFRMaskLossMixin, IFRTowerMixin, BoundaryPreservingMaskHead):
    """:class:`BoundaryPreservingMaskHead` with IFR in place of the mask
    branch's four 3x3 convs (the paper's Table 2 row).

    The boundary branch keeps its two convs by default: they refine a
    different signal (the 28x28 boundary features after the stride-2 conv,
    fused with the mask tower's output), the paper replaces "the stacked
    convolutions in the mask head" and says nothing of them, and two convs
    are not the four-conv tower IFR is built to replace. With a ``budget``
    and ``fp_correction``, the mask and boundary predictions of each iterate
    of the mask tower are supervised.
    ``ifr_towers=('convs', 'boundary_convs')`` replaces them too, by a
    second refiner of their own.

    Args:
        ifr_cfg (dict): config of each :class:`~mmifr.models.layers.IFRRefiner`.
        ifr_towers (Sequence[str], optional): ``('convs', )`` (default) or
            ``('convs', 'boundary_convs')``.
        *args, **kwargs: arguments of :class:`BoundaryPreservingMaskHead`.
    """
    ifr_towers = ('convs', )
    optional_ifr_towers = ('boundary_convs', )
    default_test_solver = MASK_HEAD_TEST_SOLVER

    def _predict_iterate(self, h: Tensor, boundary_x: Tensor) -> Dict[str, Tensor]:
        # The iterate feeds the boundary branch too, as the mask tower's
        # output does: both predictions (and losses) of the iterate.
        mask_preds, boundary_preds = BoundaryPreservingMaskHead.forward(self, h, boundary_x)
        return dict(mask_preds=mask_preds, boundary_preds=boundary_preds)
