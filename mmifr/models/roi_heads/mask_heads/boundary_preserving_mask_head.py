"""BoundaryPreservingMaskHead: the mask head of BMask R-CNN (Cheng et al.,
ECCV 2020), mmdet's ``FCNMaskHead`` plus a boundary branch."""
import copy
from typing import List, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import ModuleList
from torch import Tensor, nn

from mmdet.models import FCNMaskHead
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, InstanceList
from mmifr.models.layers import PredictorInitMixin

#: Laplacian kernel of the boundary targets (BMask R-CNN's).
_LAPLACIAN = (-1., -1., -1., -1., 8., -1., -1., -1., -1.)


def laplacian_boundary_targets(mask_targets: Tensor, threshold: float = 0.1) -> Tensor:
    """Boundary targets of mask targets: 1 where the 3x3 Laplacian of the
    mask (zero padded) exceeds ``threshold``, i.e. on the inner edge of
    each mask and on the image-border pixels it covers.

    Args:
        mask_targets (Tensor): ``(N, H, W)`` targets in [0, 1].
        threshold (float): Default: 0.1 (BMask R-CNN's).

    Returns:
        Tensor: ``(N, H, W)`` float targets in {0, 1}.
    """
    kernel = mask_targets.new_tensor(_LAPLACIAN).view(1, 1, 3, 3)
    edges = F.conv2d(mask_targets.float().unsqueeze(1), kernel, padding=1).squeeze(1)
    return (edges > threshold).to(mask_targets.dtype if mask_targets.is_floating_point() else
                                  torch.float32)


@MODELS.register_module()
class BoundaryPreservingMaskHead(PredictorInitMixin, FCNMaskHead):
    """BMask R-CNN's boundary-preserving mask head.

    The mask branch is mmdet's FCN head (``convs``, ``upsample``,
    ``conv_logits``, its loss and inference). The boundary branch reads
    finer RoI features (28x28 from the stride-4 level in BMask R-CNN) and
    talks to the mask branch both ways::

        M = convs(X_mask)                                   (N, C, 14, 14)
        B = boundary_convs(downsample(X_boundary) + mask_to_boundary(M))
        M = mask_fusion(M + boundary_to_mask(B))
        mask_logits = conv_logits(relu(upsample(M)))        (N, K, 28, 28)
        boundary_logits = boundary_logits(relu(boundary_upsample(B)))

    ``downsample`` is a stride-2 3x3 conv, the two fusions 1x1 convs,
    ``mask_fusion`` a 3x3 conv, all with ReLU. The boundary loss is BCE +
    Dice against :func:`laplacian_boundary_targets` of the mask targets, on
    the logits of the ground-truth class. As in the official code, both
    predictors start ~ N(0, 0.001).

    Args:
        num_boundary_convs (int): 3x3 convs of the boundary branch.
            Default: 2.
        boundary_in_channels (int): channels of ``X_boundary``. Default: 256.
        boundary_threshold (float): see :func:`laplacian_boundary_targets`.
        loss_boundary_bce (dict): Default: sigmoid cross-entropy, weight 1.
        loss_boundary_dice (dict): Default: BMask's Dice (``1 - (2|PT| + 1)
            / (|P| + |T| + 1)`` per RoI), weight 1.
        predictor_init_std (float, optional): see
            :class:`~mmifr.models.layers.PredictorInitMixin`.
        *args, **kwargs: arguments of mmdet's ``FCNMaskHead``.
    """
    init_predictors = ('conv_logits', 'boundary_logits')

    def __init__(self,
                 *args,
                 num_boundary_convs: int = 2,
                 boundary_in_channels: int = 256,
                 boundary_threshold: float = 0.1,
                 loss_boundary_bce: ConfigType = dict(
                     type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
                 loss_boundary_dice: ConfigType = dict(
                     type='DiceLoss', use_sigmoid=True, activate=True, naive_dice=True,
                     eps=1.0, loss_weight=1.0),
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.num_convs < 1 or num_boundary_convs < 1:
            raise ValueError(
                'BoundaryPreservingMaskHead: the two branches exchange their tower outputs, so '
                f'num_convs ({self.num_convs}) and num_boundary_convs ({num_boundary_convs}) '
                'must both be >= 1')
        self.num_boundary_convs = num_boundary_convs
        self.boundary_threshold = boundary_threshold
        channels = self.conv_out_channels
        conv = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg)
        self.boundary_downsample = ConvModule(
            boundary_in_channels, channels, 3, stride=2, padding=1, **conv)
        self.mask_to_boundary = ConvModule(channels, channels, 1, **conv)
        self.boundary_convs = ModuleList([
            ConvModule(channels, channels, self.conv_kernel_size,
                       padding=(self.conv_kernel_size - 1) // 2, **conv)
            for _ in range(num_boundary_convs)
        ])
        self.boundary_to_mask = ConvModule(channels, channels, 1, **conv)
        self.mask_fusion = ConvModule(channels, channels, 3, padding=1, **conv)
        # The boundary predictor mirrors the mask one (and gets its init).
        self.boundary_upsample = copy.deepcopy(self.upsample)
        self.boundary_logits = copy.deepcopy(self.conv_logits)
        self.loss_boundary_bce = MODELS.build(loss_boundary_bce)
        self.loss_boundary_dice = MODELS.build(loss_boundary_dice)

    def init_weights(self) -> None:
        # mmdet's init of upsample and conv_logits for their boundary twins,
        # first, so that PredictorInitMixin (in super) has the last word.
        for m in (self.boundary_upsample, self.boundary_logits):
            if m is not None and hasattr(m, 'weight') and hasattr(m, 'bias'):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                nn.init.constant_(m.bias, 0)
        super().init_weights()

    def _predict(self, x: Tensor, upsample: nn.Module, logits: nn.Module) -> Tensor:
        if upsample is not None:
            x = upsample(x)
            if self.upsample_method == 'deconv':
                x = self.relu(x)
        return logits(x)

    def forward(self, x: Tensor, boundary_x: Tensor) -> Tuple[Tensor, Tensor]:
        """
        Args:
            x (Tensor): ``(N, in_channels, 14, 14)`` mask RoI features.
            boundary_x (Tensor): ``(N, boundary_in_channels, 28, 28)``
                boundary RoI features.

        Returns:
            tuple[Tensor, Tensor]: mask and boundary logits, each
            ``(N, num_classes, 28, 28)`` (``num_classes`` is 1 if
            class-agnostic).
        """
        for conv in self.convs:
            x = conv(x)
        b = self.boundary_downsample(boundary_x) + self.mask_to_boundary(x)
        for conv in self.boundary_convs:
            b = conv(b)
        x = self.mask_fusion(x + self.boundary_to_mask(b))
        return (self._predict(x, self.upsample, self.conv_logits),
                self._predict(b, self.boundary_upsample, self.boundary_logits))

    def loss_and_target(self, mask_preds: Tensor, boundary_preds: Tensor,
                        sampling_results: List[SamplingResult], batch_gt_instances: InstanceList,
                        rcnn_train_cfg: ConfigType) -> dict:
        """mmdet's mask loss and targets, plus ``loss_boundary_bce`` and
        ``loss_boundary_dice`` in the ``loss_mask`` dict.

        Args:
            mask_preds, boundary_preds (Tensor): ``(N, num_classes, 28, 28)``
                logits of the positive RoIs.
            sampling_results, batch_gt_instances, rcnn_train_cfg: as for
                mmdet's ``FCNMaskHead.loss_and_target``.
        """
        out = super().loss_and_target(
            mask_preds=mask_preds,
            sampling_results=sampling_results,
            batch_gt_instances=batch_gt_instances,
            rcnn_train_cfg=rcnn_train_cfg)
        if boundary_preds.size(0) == 0:
            zero = boundary_preds.sum()
            out['loss_mask'].update(loss_boundary_bce=zero, loss_boundary_dice=zero)
            return out
        targets = laplacian_boundary_targets(out['mask_targets'], self.boundary_threshold)
        if targets.shape[-2:] != boundary_preds.shape[-2:]:
            targets = F.interpolate(targets[:, None], boundary_preds.shape[-2:],
                                    mode='nearest')[:, 0]
        if self.class_agnostic:
            preds = boundary_preds[:, 0]
        else:
            labels = torch.cat([res.pos_gt_labels for res in sampling_results])
            preds = boundary_preds[torch.arange(len(labels), device=labels.device), labels]
        out['loss_mask'].update(
            loss_boundary_bce=self.loss_boundary_bce(preds, targets),
            loss_boundary_dice=self.loss_boundary_dice(preds, targets))
        return out
