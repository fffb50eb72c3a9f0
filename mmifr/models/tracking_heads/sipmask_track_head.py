"""SipMask's tracking branch (Cao et al., ECCV 2020, the VIS version)."""
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmdet.models.losses import accuracy
from mmdet.registry import MODELS
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig


@MODELS.register_module()
class SipMaskTrackHead(BaseModule):
    """An embedding map at stride 8 whose value at a box's centre is the
    box's tracking embedding, matched to earlier frames as MaskTrack R-CNN's.

    ``stacked_convs`` convs (weights shared across levels, as a head's
    towers) run on each of the first ``num_levels`` FPN levels; the outputs
    are upsampled to the first level, concatenated and projected by a 1x1
    conv to ``embed_channels``. Training pairs a key frame with a reference
    frame: the embeddings of the key frame's positives (their predicted
    boxes) score against those of the reference frame's ground-truth boxes,
    jittered by ``jitter`` of their size, plus a zero "new object" logit;
    the loss is the cross-entropy against the index (+1) of the same
    instance in the reference frame, 0 when it is not there.

    The interface is that of mmdet's ``RoITrackHead`` where
    ``MaskTrackRCNNTracker`` reads it (``extract_roi_feats``, ``predict``),
    so mmdet's tracker runs on it unchanged.

    Args:
        in_channels (int): FPN channels. Default: 256.
        feat_channels (int): Default: 256.
        stacked_convs (int): Default: 3 (SipMask's: one fewer than the box
            head's towers).
        num_levels (int): Default: 3.
        embed_channels (int): Default: 512.
        feat_stride (int): stride of the first level (of the map). Default: 8.
        jitter (float): relative jitter of the reference boxes. Default: 0.05.
        norm_cfg (dict): norm of the convs. Default: GN, 32 groups.
        loss_match (dict): Default: ``CrossEntropyLoss``.
        init_cfg (dict, optional): Default: convs N(0, 0.01), as SipMask's.
    """

    def __init__(self,
                 in_channels: int = 256,
                 feat_channels: int = 256,
                 stacked_convs: int = 3,
                 num_levels: int = 3,
                 embed_channels: int = 512,
                 feat_stride: int = 8,
                 jitter: float = 0.05,
                 norm_cfg: OptConfigType = dict(type='GN', num_groups=32, requires_grad=True),
                 loss_match: ConfigType = dict(
                     type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                 init_cfg: OptMultiConfig = dict(
                     type='Normal', layer='Conv2d', std=0.01)) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in (('stacked_convs', stacked_convs), ('num_levels', num_levels)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f'SipMaskTrackHead: {name} must be a positive int, got {value!r}')
        self.num_levels, self.feat_stride, self.jitter = num_levels, feat_stride, jitter
        self.track_convs = nn.ModuleList([
            ConvModule(in_channels if i == 0 else feat_channels, feat_channels, 3, padding=1,
                       norm_cfg=norm_cfg, bias=norm_cfg is None)
            for i in range(stacked_convs)
        ])
        self.embed = nn.Conv2d(feat_channels * num_levels, embed_channels, 1)
        self.loss_match = MODELS.build(loss_match)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """FPN levels ``(B, C, H_l, W_l)`` -> ``(B, embed_channels, H_0, W_0)``."""
        if len(feats) < self.num_levels:
            raise ValueError(f'SipMaskTrackHead: num_levels={self.num_levels}, but the neck '
                             f'gives {len(feats)} levels')
        size = feats[0].shape[-2:]
        outs = []
        for feat in feats[:self.num_levels]:
            for conv in self.track_convs:
                feat = conv(feat)
            if feat.shape[-2:] != size:
                feat = F.interpolate(feat, size=size, mode='bilinear', align_corners=False)
            outs.append(feat)
        return self.embed(torch.cat(outs, 1))

    def centre_embeddings(self, embed_map: Tensor, bboxes: Tensor) -> Tensor:
        """The ``(N, E)`` values of one image's ``(E, H, W)`` map at the
        cells holding the centres of ``(N, 4)`` boxes (input pixels)."""
        h, w = embed_map.shape[-2:]
        ctr = (bboxes[:, :2] + bboxes[:, 2:]) / 2 / self.feat_stride
        cx = ctr[:, 0].floor().long().clamp(0, w - 1)
        cy = ctr[:, 1].floor().long().clamp(0, h - 1)
        return embed_map[:, cy, cx].t()

    def _embeddings(self, feats: Sequence[Tensor], bboxes: List[Tensor]) -> List[Tensor]:
        return [self.centre_embeddings(m, b) for m, b in zip(self(feats), bboxes)]

    def extract_roi_feats(self, feats: Sequence[Tensor],
                          bboxes: List[Tensor]) -> Tuple[Tensor, List[int]]:
        """``(sum N_i, E)`` embeddings of each image's ``(N_i, 4)`` boxes
        (input pixels) and the ``N_i``: mmdet's ``RoITrackHead`` interface."""
        return torch.cat(self._embeddings(feats, bboxes)), [len(b) for b in bboxes]

    @staticmethod
    def predict(roi_feats: Tensor, prev_roi_feats: Tensor) -> Tensor:
        """``(N, M + 1)`` logits of ``N`` boxes against ``M`` remembered ones:
        a zero "new object" column, then the dot products."""
        logits = roi_feats @ prev_roi_feats.t()
        return torch.cat([logits.new_zeros(len(logits), 1), logits], 1)

    def jitter_boxes(self, bboxes: Tensor) -> Tensor:
        """Shift the centres and scale the sides of ``(N, 4)`` boxes by
        uniform noise of at most ``jitter`` of their size."""
        noise = bboxes.new_empty(len(bboxes), 4).uniform_(-self.jitter, self.jitter)
        ctr, wh = (bboxes[:, :2] + bboxes[:, 2:]) / 2, (bboxes[:, 2:] - bboxes[:, :2]).abs()
        ctr, wh = ctr + wh * noise[:, :2], wh * (1 + noise[:, 2:])
        return torch.cat([ctr - wh / 2, ctr + wh / 2], 1)

    @staticmethod
    def match_targets(key_ids: Tensor, ref_ids: Tensor) -> Tensor:
        """For each key box's instance id, 1 + the index of that instance
        among the reference frame's ground truths, or 0 if it is absent."""
        same = key_ids[:, None] == ref_ids[None]
        # Column 0 is "absent"; argmax takes the first hit.
        return torch.cat([~same.any(1, keepdim=True), same], 1).float().argmax(1)

    def loss(self, key_feats: Sequence[Tensor], ref_feats: Sequence[Tensor],
             key_bboxes: List[Tensor], key_instance_ids: List[Tensor],
             ref_gt_instances: List[InstanceData]) -> dict:
        """Matching loss of a batch of key / reference frame pairs.

        Args:
            key_feats, ref_feats (Sequence[Tensor]): FPN levels of the key
                and the reference frames, ``(B, C, H_l, W_l)``.
            key_bboxes (list[Tensor]): per pair, ``(N_i, 4)`` boxes of the key
                frame's positives (input pixels).
            key_instance_ids (list[Tensor]): per pair, ``(N_i, )`` instance
                ids of those positives.
            ref_gt_instances (list[InstanceData]): the reference frames'
                ground truths (``bboxes``, ``instances_ids``).

        Returns:
            dict: ``loss_match`` (mean over the pairs) and ``match_accuracy``.
        """
        ref_bboxes = [self.jitter_boxes(get_box_tensor(gt.bboxes)) for gt in ref_gt_instances]
        keys = self._embeddings(key_feats, key_bboxes)
        refs = self._embeddings(ref_feats, ref_bboxes)
        losses, correct, total = [], 0.0, 0
        for key, ref, ids, gt in zip(keys, refs, key_instance_ids, ref_gt_instances):
            if len(key) == 0:
                # Keep every parameter in the graph (DDP) at zero loss.
                losses.append(key.sum() * 0 + ref.sum() * 0)
                continue
            logits = self.predict(key, ref)
            targets = self.match_targets(ids, gt.instances_ids)
            losses.append(self.loss_match(logits, targets))
            correct += accuracy(logits, targets).item() * len(targets)
            total += len(targets)
        return dict(
            loss_match=sum(losses) / len(losses),
            match_accuracy=torch.tensor(correct / max(total, 1), device=keys[0].device))
