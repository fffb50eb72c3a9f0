"""MaskTrack R-CNN whose IFR mask head warm-starts from frame to frame."""
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Iterator, List, Sequence, Tuple

import torch
from torch import Tensor, nn

from mmdet.models.vis import MaskTrackRCNN
from mmdet.registry import MODELS
from mmdet.structures import TrackSampleList
from mmdet.structures.bbox import bbox2roi
from mmifr.models.layers import IFRRefiner, WarmStartMemory
from .video_warm_start_mixin import VideoWarmStartMixin


@contextmanager
def _outputs_of(module: nn.Module) -> Iterator[List]:
    """The outputs of ``module``'s forwards while inside, in call order."""
    outputs: List = []
    handle = module.register_forward_hook(lambda mod, args, out: outputs.append(out))
    try:
        yield outputs
    finally:
        handle.remove()


@contextmanager
def _solved_as_at_inference(refiners: Sequence[IFRRefiner]) -> Iterator[None]:
    """The refiners in eval mode (their inference solve) while inside."""
    modes = [r.training for r in refiners]
    for refiner in refiners:
        refiner.train(False)
    try:
        yield
    finally:
        for refiner, mode in zip(refiners, modes):
            refiner.train(mode)


@contextmanager
def _stats_set_aside(refiners: Sequence[IFRRefiner]) -> Iterator[None]:
    """Keep the solves made inside out of the refiners' statistics, which the
    training log reads as the training solve's."""
    kept = [r.pop_stats() for r in refiners]
    try:
        yield
    finally:
        for refiner, stats in zip(refiners, kept):
            refiner.pop_stats()
            refiner.stats_buffer.extend(stats)


@MODELS.register_module()
class IFRMaskTrackRCNN(VideoWarmStartMixin, MaskTrackRCNN):
    """mmdet's ``MaskTrackRCNN`` with :class:`VideoWarmStartMixin`: each mask
    RoI's solve starts from the equilibrium of the previous frame's RoI whose
    feature is nearest. The mask head runs before the tracker, so the match
    is made on the RoI features, not on track ids. Same weights and
    checkpoints as ``MaskTrackRCNN``.

    With ``warm_start.train_loss_weight > 0`` (and a ``budget``), training
    also teaches the mask head the warm start it will run: each training
    pair's reference frame plays the previous frame. Its ground-truth boxes'
    RoIs are solved as at inference (no gradient) into a
    :class:`~mmifr.models.layers.WarmStartMemory`; the key frame's boxes of
    the objects the reference frame also shows (same ``instances_ids``) then
    run ``budget`` block evaluations from the nearest reference equilibria,
    in the graph, and the mask head's own loss of their masks is added as
    ``loss_mask_warm`` (times the weight). The RoI features are detached:
    the loss shapes the mask head, not the features the box head and RPN
    share. Nothing is added while the refiner does not solve (its unrolled
    warm-up phase).

    Args:
        warm_start (dict, optional): see :class:`VideoWarmStartMixin`.
        *args, **kwargs: arguments of mmdet's ``MaskTrackRCNN``.
    """
    trains_warm_start = True

    def loss(self, inputs: Tensor, data_samples: TrackSampleList, **kwargs) -> dict:
        """mmdet's losses, plus ``loss_mask_warm`` when
        ``warm_start.train_loss_weight`` is set (see the class)."""
        weight = self.warm_start_cfg['train_loss_weight'] if self.warm_start_cfg else 0.0
        if not weight:
            return super().loss(inputs, data_samples, **kwargs)
        detector = self.detector
        with _outputs_of(detector.neck if detector.with_neck else detector.backbone) as feats:
            losses = super().loss(inputs, data_samples, **kwargs)
        if len(feats) != 2:
            raise RuntimeError(f'{type(self).__name__}: expected the features of the key and the '
                               f'reference frames from MaskTrackRCNN.loss, got {len(feats)} sets')
        key_x, ref_x = feats
        losses['loss_mask_warm'] = weight * self._warm_start_loss(key_x, ref_x, data_samples)
        return losses

    def _warm_start_loss(self, key_x: Tuple[Tensor], ref_x: Tuple[Tensor],
                         data_samples: TrackSampleList) -> Tensor:
        """The mask loss of the key frames' objects, warm-started from the
        reference frames' equilibria.

        Args:
            key_x, ref_x (tuple[Tensor]): the key and reference frames'
                feature maps, ``(B, C, H_l, W_l)`` per level.
            data_samples (list[TrackDataSample]): the training pairs.

        Returns:
            Tensor: the mask head's ``loss_mask`` (a scalar; zero when no
            object is in both frames or the refiner does not solve).
        """
        roi_head = self.detector.roi_head
        refiners = [m for m in roi_head.mask_head.modules() if isinstance(m, IFRRefiner)]
        zero = key_x[0].new_zeros(())
        if not any(r.effective_mode == 'deq' for r in refiners):
            return zero
        preds, targets, gt_instances = [], [], []
        with _stats_set_aside(refiners):
            for i, sample in enumerate(data_samples):
                key = sample.get_key_frames()[0].gt_instances
                ref = sample.get_ref_frames()[0].gt_instances
                shown = torch.isin(key.instances_ids, ref.instances_ids)
                if not shown.any():
                    continue
                # Every key RoI starts from its nearest reference equilibrium:
                # the instance ids already say the object is there to match.
                memory = WarmStartMemory(self.warm_start_cfg['budget'], float('inf'))
                memory.new_frame([i], [0])
                with torch.no_grad(), memory.attached(refiners), \
                        _solved_as_at_inference(refiners):
                    roi_head._mask_forward([lvl[i:i + 1] for lvl in ref_x],
                                           bbox2roi([ref.bboxes]))
                memory.new_frame([i], [1])
                with memory.attached(refiners):
                    out = roi_head._mask_forward([lvl[i:i + 1].detach() for lvl in key_x],
                                                 bbox2roi([key.bboxes[shown]]))
                preds.append(out['mask_preds'])
                # What mmdet's mask targets read of a sampling result.
                targets.append(SimpleNamespace(pos_priors=key.bboxes[shown],
                                               pos_assigned_gt_inds=shown.nonzero()[:, 0],
                                               pos_gt_labels=key.labels[shown]))
                gt_instances.append(key)
        if not preds:
            return zero
        out = roi_head.mask_head.loss_and_target(
            mask_preds=torch.cat(preds), sampling_results=targets,
            batch_gt_instances=gt_instances, rcnn_train_cfg=roi_head.train_cfg)
        return out['loss_mask']['loss_mask']
