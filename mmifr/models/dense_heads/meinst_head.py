"""MEInst (Zhang et al., CVPR 2020): FCOS that regresses a PCA encoding of
each instance's box-cropped mask."""
from typing import List, Tuple

import numpy as np
import torch
from mmcv.cnn import ConvModule
from torch import Tensor, nn

from mmdet.models import CondInstBboxHead, FCOSHead
from mmdet.models.dense_heads.base_mask_head import BaseMaskHead
from mmdet.models.utils import empty_instances
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import ConfigType, InstanceList, OptConfigType, reduce_mean
from mmifr.models.utils import centerness_of_points, paste_box_masks


@MODELS.register_module()
class MEInstBboxHead(CondInstBboxHead):
    """FCOS head with MEInst's mask branch: a tower of ``stacked_convs``
    convs on the FPN feature, beside the classification and regression
    towers and built like them, and a 3x3 conv predicting ``num_params``
    mask coefficients per location.

    The coefficients take the place of CondInst's dynamic-conv parameters,
    so mmdet's CondInst box head carries them: to the mask head for the
    positive locations in training (``get_positive_infos``) and through NMS
    at inference (``results.param_preds``). Targets, losses and box
    post-processing are FCOS's.

    Args:
        num_params (int): mask coefficients per location (the PCA's
            ``dim``). Default: 60.
        *args, **kwargs: arguments of mmdet's ``FCOSHead``.

    Outputs per level: ``cls_score (B, num_classes, H, W)``,
    ``bbox_pred (B, 4, H, W)``, ``centerness (B, 1, H, W)``,
    ``coeff_pred (B, num_params, H, W)``.
    """

    def __init__(self, *args, num_params: int = 60, **kwargs) -> None:
        super().__init__(*args, num_params=num_params, **kwargs)

    def _init_layers(self) -> None:
        # FCOS's layers, not CondInst's controller (which reads the reg tower).
        FCOSHead._init_layers(self)
        self.mask_convs = nn.ModuleList([
            ConvModule(
                self.in_channels if i == 0 else self.feat_channels,
                self.feat_channels,
                3,
                padding=1,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
                bias=self.conv_bias) for i in range(self.stacked_convs)
        ])
        self.mask_pred = nn.Conv2d(self.feat_channels, self.num_params, 3, padding=1)

    def forward_single(self, x: Tensor, scale: nn.Module,
                       stride: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        cls_score, bbox_pred, centerness = FCOSHead.forward_single(self, x, scale, stride)
        mask_feat = x
        for conv in self.mask_convs:
            mask_feat = conv(mask_feat)
        return cls_score, bbox_pred, centerness, self.mask_pred(mask_feat)


@MODELS.register_module()
class MEInstMaskHead(BaseMaskHead):
    """MEInst's mask head: no layers of its own, only the mask encoding.

    Training: the target of a positive location is the PCA encoding of its
    ground-truth mask cropped to its ground-truth box at ``S x S``; the loss
    is the MSE of the predicted coefficients, weighted by the location's
    FCOS centerness target and normalised by the sum of those weights times
    ``dim`` (MEInst's). Inference: the coefficients of each detection are
    decoded to an ``S x S`` mask and pasted into its box, as Mask R-CNN's.

    Args:
        mask_coder (dict): a :class:`~mmifr.models.task_modules.PCAMaskCoder`.
        loss_mask (dict): Default: ``MSELoss``, weight 1.
        train_cfg, test_cfg (dict, optional): ``test_cfg.mask_thr`` is the
            binarisation threshold (default 0.5).
    """

    def __init__(self,
                 mask_coder: ConfigType = dict(type='PCAMaskCoder', dim=60, mask_size=28),
                 loss_mask: ConfigType = dict(type='MSELoss', loss_weight=1.0),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.mask_coder = TASK_UTILS.build(mask_coder)
        self.loss_mask = MODELS.build(loss_mask)
        self.train_cfg, self.test_cfg = train_cfg, test_cfg

    def forward(self, x: Tuple[Tensor], positive_infos: InstanceList) -> Tuple[List[Tensor]]:
        """The ``(num_pos, dim)`` coefficients of each image, from the box head."""
        return ([info.param_preds for info in positive_infos], )

    def loss_by_feat(self, coeff_preds: List[Tensor], batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict], positive_infos: InstanceList,
                     **kwargs) -> dict:
        preds, targets, weights = [], [], []
        for coeffs, gt, info in zip(coeff_preds, batch_gt_instances, positive_infos):
            if len(coeffs) == 0:
                continue
            gt_boxes = get_box_tensor(gt.bboxes)
            crops = gt.masks.crop_and_resize(
                gt_boxes, (self.mask_coder.mask_size, ) * 2,
                np.arange(len(gt_boxes)),
                device=coeffs.device).to_tensor(torch.float32, coeffs.device)
            gt_inds = info.pos_assigned_gt_inds
            with torch.no_grad():
                targets.append(self.mask_coder.encode(crops)[gt_inds])
            weights.append(centerness_of_points(info.points, gt_boxes[gt_inds]))
            preds.append(coeffs)
        if not preds:
            return dict(loss_mask=sum(c.sum() for c in coeff_preds) * 0)
        preds, targets, weights = torch.cat(preds), torch.cat(targets), torch.cat(weights)
        norm = reduce_mean(weights.sum()).clamp(min=1e-6) * preds.size(1)
        loss = self.loss_mask(
            preds, targets, weight=weights[:, None].expand_as(preds), avg_factor=norm.clamp(min=1))
        return dict(loss_mask=loss)

    def predict_by_feat(self,
                        coeff_preds: List[Tensor],
                        results_list: InstanceList,
                        batch_img_metas: List[dict],
                        rescale: bool = True,
                        **kwargs) -> InstanceList:
        mask_thr = (self.test_cfg or {}).get('mask_thr', 0.5)
        for i, (coeffs, meta) in enumerate(zip(coeff_preds, batch_img_metas)):
            results = results_list[i]
            if len(results) == 0:
                results_list[i] = empty_instances(
                    [meta], coeffs.device, task_type='mask', instance_results=[results])[0]
                continue
            paste_box_masks(results, self.mask_coder.decode(coeffs), meta, rescale, mask_thr)
        return results_list
