"""SipMask (Cao et al., ECCV 2020): FCOS whose positives each predict one
set of basis-mask coefficients per quadrant of their box."""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from torch import Tensor, nn

from mmdet.models import CondInstBboxHead
from mmdet.models.utils import empty_instances
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps, distance2bbox, get_box_tensor
from mmdet.utils import InstanceList, OptInstanceList
from mmifr.models.layers import FeatureAlign
from mmifr.models.utils import crop_split, crop_to_boxes


@MODELS.register_module()
class SipMaskHead(CondInstBboxHead):
    """SipMask's head: FCOS plus spatially split instance masks.

    Detection is mmdet's FCOS (targets, losses, NMS) with SipMask's two
    changes: the classification tower has ``stacked_convs - 1`` convs and
    its output is re-sampled by :class:`~mmifr.models.layers.FeatureAlign`
    (a deformable conv steered by the regressed box) before the classifier.
    From the aligned feature each location also predicts ``num_cells**2 x
    num_bases`` coefficients (mmdet's CondInst machinery carries them to the
    positives and through NMS). ``num_bases`` basis masks at stride 2 are
    made from the regression-tower features of the first
    ``num_basis_levels`` levels (upsampled to stride 8, concatenated, a 1x1
    and a 3x3 conv, 4x bilinear upsampling).

    The mask of an instance is, in each cell (quadrant) of its box, the
    sigmoid of the bases weighted by that cell's coefficients, and 0 outside
    the box (:func:`~mmifr.models.utils.crop_split`). Training uses the
    positives' *predicted* boxes: per-pixel BCE against the ground-truth mask
    inside the box, summed and divided by the box area, weighted by the
    mask-alignment weight ``score x IoU(predicted, ground-truth box)``
    normalised to mean 1 over the image.

    Args:
        num_bases (int): Default: 32.
        num_cells (int): cells per box side. Default: 2.
        num_basis_levels (int): Default: 3.
        basis_channels (int): of the 1x1 conv. Default: 512.
        loss_mask_weight (float): Default: 1.0.
        *args, **kwargs: arguments of mmdet's ``FCOSHead`` (with GN towers);
            ``test_cfg.mask_thr`` binarises the masks (default 0.5).

    Outputs: per level ``cls_score``, ``bbox_pred``, ``centerness``,
    ``coeff_pred (B, num_cells**2 * num_bases, H, W)``, and the bases
    ``(B, num_bases, H_in / 2, W_in / 2)``.
    """

    def __init__(self,
                 *args,
                 num_bases: int = 32,
                 num_cells: int = 2,
                 num_basis_levels: int = 3,
                 basis_channels: int = 512,
                 loss_mask_weight: float = 1.0,
                 **kwargs) -> None:
        self.num_bases, self.num_cells = num_bases, num_cells
        self.num_basis_levels, self.basis_channels = num_basis_levels, basis_channels
        self.loss_mask_weight = loss_mask_weight
        super().__init__(*args, num_params=num_cells * num_cells * num_bases, **kwargs)
        if self.stacked_convs < 2:
            raise ValueError(f'SipMaskHead: stacked_convs must be >= 2, got {self.stacked_convs}')

    def _init_layers(self) -> None:
        super()._init_layers()
        # SipMask's classification tower is one conv shorter: FeatureAlign
        # takes the place of its last conv.
        self.cls_convs = self.cls_convs[:-1]
        groups = (self.norm_cfg or {}).get('num_groups', 32)  # the towers' GroupNorm
        self.feat_align = FeatureAlign(self.feat_channels, num_groups=groups)
        # CondInst's ``controller`` (3x3, num_params outputs) predicts the
        # coefficients; here it reads the aligned classification feature.
        self.basis_lat0 = nn.Conv2d(self.feat_channels * self.num_basis_levels,
                                    self.basis_channels, 1)
        self.basis_lat = nn.Conv2d(self.basis_channels, self.num_bases, 3, padding=1)

    def forward(self, x: Tuple[Tensor]) -> tuple:
        cls_scores, bbox_preds, centernesses, coeff_preds, reg_feats = [], [], [], [], []
        for feat, scale, stride in zip(x, self.scales, self.strides):
            for out, value in zip((cls_scores, bbox_preds, centernesses, coeff_preds, reg_feats),
                                  self.forward_single(feat, scale, stride)):
                out.append(value)
        return cls_scores, bbox_preds, centernesses, coeff_preds, self.bases(reg_feats)

    def forward_single(self, x: Tensor, scale: nn.Module, stride: int) -> tuple:
        """FCOS's forward of one level with the classifier behind
        FeatureAlign; also returns the coefficients and the regression
        feature."""
        cls_feat, reg_feat = x, x
        for conv in self.cls_convs:
            cls_feat = conv(cls_feat)
        for conv in self.reg_convs:
            reg_feat = conv(reg_feat)
        bbox_pred = scale(self.conv_reg(reg_feat)).float()
        bbox_pred = bbox_pred.clamp(min=0) if self.norm_on_bbox else bbox_pred.exp()
        centerness = self.conv_centerness(reg_feat if self.centerness_on_reg else cls_feat)
        cls_feat = self.feat_align(cls_feat, bbox_pred)
        if self.norm_on_bbox and not self.training:
            bbox_pred = bbox_pred * stride
        return (self.conv_cls(cls_feat), bbox_pred, centerness, self.controller(cls_feat),
                reg_feat)

    def bases(self, reg_feats: List[Tensor]) -> Tensor:
        """``(B, num_bases, H_in / 2, W_in / 2)`` basis masks (logit-free:
        ReLU outputs, as SipMask's)."""
        size = reg_feats[0].shape[-2:]
        feats = [reg_feats[0]] + [
            F.interpolate(f, size=size, mode='bilinear', align_corners=False)
            for f in reg_feats[1:self.num_basis_levels]
        ]
        bases = F.relu(self.basis_lat(F.relu(self.basis_lat0(torch.cat(feats, 1)))))
        return F.interpolate(bases, scale_factor=4, mode='bilinear', align_corners=False)

    def assemble_masks(self, bases: Tensor, coeffs: Tensor, boxes: Tensor) -> Tensor:
        """``(num_bases, h, w)`` bases of one image, ``(N, cells * bases)``
        coefficients, ``(N, 4)`` boxes in the bases' pixels -> ``(N, h, w)``
        mask probabilities, 0 outside the boxes."""
        coeffs = coeffs.view(len(coeffs), self.num_cells**2, self.num_bases)
        cells = torch.einsum('nkc,chw->nkhw', coeffs, bases).sigmoid()
        return crop_split(cells, boxes)

    def loss_by_feat(self,
                     cls_scores: List[Tensor],
                     bbox_preds: List[Tensor],
                     centernesses: List[Tensor],
                     coeff_preds: List[Tensor],
                     bases: Tensor,
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: OptInstanceList = None) -> Dict[str, Tensor]:
        losses = super().loss_by_feat(cls_scores, bbox_preds, centernesses, coeff_preds,
                                      batch_gt_instances, batch_img_metas,
                                      batch_gt_instances_ignore)
        num_imgs = len(batch_img_metas)
        flat_boxes = torch.cat([p.permute(0, 2, 3, 1).reshape(num_imgs, -1, 4)
                                for p in bbox_preds], 1).detach()
        loss_mask = bases.sum() * 0
        # The positives the mask loss ran on, for SipMask's tracking branch.
        self._mask_positives = [(flat_boxes.new_zeros(0, 4), flat_boxes.new_zeros(0).long())
                                for _ in range(num_imgs)]
        for i, info in enumerate(self.get_positive_infos()):
            gt = batch_gt_instances[i]
            if len(info) == 0:
                continue
            dist = flat_boxes[i][info.pos_inds]
            if self.norm_on_bbox:
                dist = dist * info.strides[:, None]
            boxes = distance2bbox(info.points, dist)
            gt_boxes = get_box_tensor(gt.bboxes)[info.pos_assigned_gt_inds]
            # In the bases' pixels (stride 2); SipMask skips degenerate boxes.
            boxes_2 = boxes / 2
            keep = (boxes_2[:, 2] - boxes_2[:, 0]) * (boxes_2[:, 3] - boxes_2[:, 1]) > 1.0
            if not keep.any():
                continue
            boxes_2, gt_boxes, info = boxes_2[keep], gt_boxes[keep], info[keep]
            self._mask_positives[i] = (boxes_2 * 2, info.pos_assigned_gt_inds)
            pred = self.assemble_masks(bases[i], info.param_preds, boxes_2)
            target = self._mask_targets(gt, info.pos_assigned_gt_inds, bases.shape[-2:], pred)
            target = crop_to_boxes(target, boxes_2)
            labels = gt.labels[info.pos_assigned_gt_inds]
            score = info.scores[torch.arange(len(labels)), labels].sigmoid().detach()
            iou = bbox_overlaps(gt_boxes / 2, boxes_2, is_aligned=True)
            weight = score * iou
            weight = weight / (weight.sum() + 1e-4) * len(weight)
            wh = (boxes_2[:, 2:] - boxes_2[:, :2]).clamp(min=1)  # at least a pixel a side
            per_roi = F.binary_cross_entropy(pred, target, reduction='none').sum((1, 2))
            per_roi = per_roi / wh.prod(1) / len(per_roi)
            loss_mask = loss_mask + (per_roi * weight).sum()
        losses['loss_mask'] = self.loss_mask_weight * loss_mask / num_imgs
        return losses

    def get_mask_positives(self) -> List[Tuple[Tensor, Tensor]]:
        """Per image of the last :meth:`loss_by_feat`: the ``(N, 4)``
        predicted boxes (input pixels, detached) of the positives the mask
        loss ran on and the ``(N, )`` indices of their ground truths."""
        return self._mask_positives

    @staticmethod
    def _mask_targets(gt, gt_inds: Tensor, size: Tuple[int, int], like: Tensor) -> Tensor:
        """Ground-truth masks at the bases' resolution (half the padded
        input, bilinear, > 0.5), one per positive."""
        masks = gt.masks.to_tensor(torch.float32, like.device)[gt_inds]
        h, w = masks.shape[-2:]
        padded = masks.new_zeros(len(masks), size[0] * 2, size[1] * 2)
        padded[:, :min(h, size[0] * 2), :min(w, size[1] * 2)] = masks[:, :size[0] * 2, :size[1] * 2]
        half = F.interpolate(padded[:, None], size=size, mode='bilinear', align_corners=False)
        return (half[:, 0] > 0.5).float()

    def predict_by_feat(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        score_factors: Optional[List[Tensor]] = None,
                        param_preds: Optional[List[Tensor]] = None,
                        bases: Optional[Tensor] = None,
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: Optional[ConfigDict] = None,
                        rescale: bool = False,
                        with_nms: bool = True) -> InstanceList:
        results_list = super().predict_by_feat(
            cls_scores, bbox_preds, score_factors, param_preds, batch_img_metas=batch_img_metas,
            cfg=cfg, rescale=False, with_nms=with_nms)
        mask_thr = (cfg or self.test_cfg or {}).get('mask_thr', 0.5)
        for i, (results, meta) in enumerate(zip(results_list, batch_img_metas)):
            if len(results) == 0:
                results_list[i] = empty_instances(
                    [meta], bases.device, task_type='mask', instance_results=[results])[0]
                del results_list[i].param_preds
                continue
            probs = self.assemble_masks(bases[i], results.param_preds, results.bboxes / 2)
            probs = F.interpolate(probs[:, None], scale_factor=2, mode='bilinear',
                                  align_corners=False)
            img_h, img_w = meta['img_shape'][:2]
            probs = probs[:, :, :img_h, :img_w]
            if rescale:
                results.bboxes /= results.bboxes.new_tensor(meta['scale_factor']).repeat((1, 2))
                probs = F.interpolate(probs, size=meta['ori_shape'][:2], mode='bilinear',
                                      align_corners=False)
            results.masks = probs[:, 0] >= mask_thr
            del results.param_preds
        return results_list
