"""BlendMask (Chen et al., CVPR 2020): per-instance attention maps blend a
few image-wide bases into instance masks."""
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmcv.ops import RoIAlign
from mmengine.model import ModuleList
from torch import Tensor, nn

from mmdet.models.dense_heads.base_mask_head import BaseMaskHead
from mmdet.models.utils import empty_instances
from mmdet.registry import MODELS
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import ConfigType, InstanceList, OptConfigType, reduce_mean
from mmifr.models.utils import centerness_of_points, paste_box_masks


def blend(bases: Tensor, attentions: Tensor) -> Tensor:
    """BlendMask's blender: ``(N, K, R, R)`` RoI bases and ``(N, K, M, M)``
    attentions -> ``(N, R, R)`` mask logits, the sum over ``K`` of the
    bases weighted by the attentions, bilinearly resized to ``R`` and
    softmax-normalised over ``K``."""
    attentions = F.interpolate(attentions, bases.shape[-2:], mode='bilinear',
                               align_corners=False).softmax(dim=1)
    return (bases * attentions).sum(dim=1)


@MODELS.register_module()
class BlendMaskHead(BaseMaskHead):
    """BlendMask's bottom module and blender.

    Bottom module (AdelaiDet's ProtoNet): a 3x3 conv per input level
    (``in_levels`` of the FPN, stride 8 first), summed at stride 8,
    ``num_convs`` 3x3 convs (``basis_convs``, the tower IFR replaces), a 2x
    bilinear upsampling, a 3x3 conv and a 1x1 conv to ``num_bases`` bases at
    stride 4. An auxiliary semantic head on the stride-8 level (two 3x3
    convs, a 1x1 to ``num_classes + 1``) is trained with cross-entropy
    against the instance masks' classes at stride 8 (weight 0.3).

    Blender: the attention of each positive location (or detection), a
    ``K x M x M`` vector predicted by the box head (mmdet's
    ``CondInstBboxHead`` with ``num_params = K * M * M``), blends the bases
    RoI-aligned to its box at ``R x R``: see :func:`blend`. Training RoIs are
    the positives' ground-truth boxes and the loss is the per-RoI mean BCE
    against the box-cropped mask, weighted by the FCOS centerness target and
    normalised by its sum (BlendMask's); at inference the boxes are the
    detections and the ``R x R`` masks are pasted into them.

    Args:
        in_channels (int): FPN channels. Default: 256.
        in_levels (Sequence[int]): FPN levels read (stride 8 first).
            Default: (0, 1, 2).
        feat_channels (int): Default: 128.
        num_convs (int): Default: 3.
        num_bases (int): ``K``. Default: 4.
        attn_size (int): ``M``. Default: 14.
        bottom_resolution (int): ``R``. Default: 56.
        basis_stride (int): Default: 4 (stride 8 upsampled twice).
        num_classes (int): of the semantic head; 0 disables it. Default: 80.
        norm_cfg (dict): Default: BN (AdelaiDet: SyncBN).
        loss_semantic (dict): Default: cross-entropy, weight 0.3.
        train_cfg, test_cfg (dict, optional): ``test_cfg.mask_thr``
            binarises the masks (default 0.5).
    """

    def __init__(self,
                 in_channels: int = 256,
                 in_levels: Sequence[int] = (0, 1, 2),
                 feat_channels: int = 128,
                 num_convs: int = 3,
                 num_bases: int = 4,
                 attn_size: int = 14,
                 bottom_resolution: int = 56,
                 basis_stride: int = 4,
                 num_classes: int = 80,
                 norm_cfg: ConfigType = dict(type='BN', requires_grad=True),
                 loss_semantic: ConfigType = dict(
                     type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.3),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_convs < 1:
            raise ValueError(f'BlendMaskHead: num_convs must be >= 1, got {num_convs}')
        self.in_levels = tuple(in_levels)
        self.num_bases, self.attn_size = num_bases, attn_size
        self.bottom_resolution, self.basis_stride = bottom_resolution, basis_stride
        self.num_classes = num_classes
        self.train_cfg, self.test_cfg = train_cfg, test_cfg
        conv = dict(padding=1, norm_cfg=norm_cfg)
        self.refine = ModuleList(
            [ConvModule(in_channels, feat_channels, 3, **conv) for _ in self.in_levels])
        self.basis_convs = ModuleList(
            [ConvModule(feat_channels, feat_channels, 3, **conv) for _ in range(num_convs)])
        self.basis_conv_out = ConvModule(feat_channels, feat_channels, 3, **conv)
        self.basis_pred = nn.Conv2d(feat_channels, num_bases, 1)
        if num_classes > 0:
            self.semantic_head = nn.Sequential(
                ConvModule(in_channels, feat_channels, 3, bias=False, **conv),
                ConvModule(feat_channels, feat_channels, 3, bias=False, **conv),
                nn.Conv2d(feat_channels, num_classes + 1, 1))
            self.loss_semantic = MODELS.build(loss_semantic)
        self.roi_align = RoIAlign((bottom_resolution, ) * 2, 1 / basis_stride, sampling_ratio=1,
                                  aligned=True)

    def forward(self, x: Tuple[Tensor], positive_infos: InstanceList) -> tuple:
        """
        Args:
            x (tuple[Tensor]): FPN levels, ``(B, in_channels, H_l, W_l)``.
            positive_infos (list[InstanceData]): per image, ``param_preds``
                ``(N_i, K * M * M)`` attentions of the positives (training) or
                detections (inference).

        Returns:
            tuple: ``bases (B, K, H/4, W/4)``, the attentions per image and,
            in training with the semantic head, its ``(B, C + 1, H/8, W/8)``
            logits (else ``None``).
        """
        feats = [x[level] for level in self.in_levels]
        out = self.refine[0](feats[0])
        for refine, feat in zip(self.refine[1:], feats[1:]):
            out = out + F.interpolate(refine(feat), out.shape[-2:], mode='bilinear',
                                      align_corners=False)
        for conv in self.basis_convs:
            out = conv(out)
        out = F.interpolate(out, scale_factor=2, mode='bilinear', align_corners=False)
        bases = self.basis_pred(self.basis_conv_out(out))
        semantic = (self.semantic_head(feats[0])
                    if self.training and self.num_classes > 0 else None)
        return bases, [info.param_preds for info in positive_infos], semantic

    def _blend_rois(self, bases: Tensor, img_id: int, boxes: Tensor,
                    attentions: Tensor) -> Tensor:
        rois = torch.cat([boxes.new_full((len(boxes), 1), img_id), boxes], dim=1)
        attentions = attentions.view(len(boxes), self.num_bases, self.attn_size,
                                     self.attn_size)
        return blend(self.roi_align(bases, rois), attentions)

    def _semantic_targets(self, batch_gt_instances: InstanceList, shape: Tuple[int,
                                                                               int]) -> Tensor:
        """``(B, H, W)`` class + 1 of the instance masks (0: background),
        nearest-downsampled to the semantic head's resolution."""
        targets = []
        for gt in batch_gt_instances:
            masks = gt.masks.to_tensor(torch.bool, gt.labels.device)
            target = masks.new_zeros(masks.shape[-2:], dtype=torch.long)
            for mask, label in zip(masks, gt.labels):
                target[mask] = label + 1
            targets.append(target)
        targets = torch.stack(targets)[:, None].float()
        return F.interpolate(targets, size=shape, mode='nearest')[:, 0].long()

    def loss_by_feat(self, bases: Tensor, attentions: List[Tensor], semantic: Optional[Tensor],
                     batch_gt_instances: InstanceList, batch_img_metas: List[dict],
                     positive_infos: InstanceList, **kwargs) -> dict:
        logits, targets, weights = [], [], []
        for img_id, (attn, gt, info) in enumerate(
                zip(attentions, batch_gt_instances, positive_infos)):
            if len(attn) == 0:
                continue
            gt_boxes = get_box_tensor(gt.bboxes)
            gt_inds = info.pos_assigned_gt_inds
            logits.append(self._blend_rois(bases, img_id, gt_boxes[gt_inds], attn))
            crops = gt.masks.crop_and_resize(
                gt_boxes, (self.bottom_resolution, ) * 2,
                np.arange(len(gt_boxes)),
                device=attn.device).to_tensor(torch.float32, attn.device)
            targets.append(crops[gt_inds])
            weights.append(centerness_of_points(info.points, gt_boxes[gt_inds]))
        losses = {}
        if logits:
            logits, targets, weights = torch.cat(logits), torch.cat(targets), torch.cat(weights)
            per_roi = F.binary_cross_entropy_with_logits(
                logits, targets, reduction='none').flatten(1).mean(1)
            norm = reduce_mean(weights.sum()).clamp(min=1e-6)
            losses['loss_mask'] = (per_roi * weights).sum() / norm
        else:
            losses['loss_mask'] = bases.sum() * 0 + sum(a.sum() for a in attentions) * 0
        if semantic is not None:
            sem_targets = self._semantic_targets(batch_gt_instances, semantic.shape[-2:])
            losses['loss_semantic'] = self.loss_semantic(semantic, sem_targets)
        return losses

    def predict_by_feat(self,
                        bases: Tensor,
                        attentions: List[Tensor],
                        semantic: Optional[Tensor],
                        results_list: InstanceList,
                        batch_img_metas: List[dict],
                        rescale: bool = True,
                        **kwargs) -> InstanceList:
        mask_thr = (self.test_cfg or {}).get('mask_thr', 0.5)
        for img_id, (attn, meta) in enumerate(zip(attentions, batch_img_metas)):
            results = results_list[img_id]
            if len(results) == 0:
                results_list[img_id] = empty_instances(
                    [meta], bases.device, task_type='mask', instance_results=[results])[0]
                continue
            probs = self._blend_rois(bases, img_id, results.bboxes, attn).sigmoid()
            paste_box_masks(results, probs, meta, rescale, mask_thr)
        return results_list
