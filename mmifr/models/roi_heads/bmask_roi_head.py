"""BMaskRoIHead: the RoI head of BMask R-CNN (Cheng et al., ECCV 2020)."""
from typing import List, Optional, Tuple

from torch import Tensor

from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, InstanceList


@MODELS.register_module()
class BMaskRoIHead(StandardRoIHead):
    """mmdet's ``StandardRoIHead`` with a second mask RoI extractor for the
    boundary branch of a :class:`BoundaryPreservingMaskHead`.

    Box branch, sampling, mask targets and inference are mmdet's. Two
    hooks change: ``_mask_forward`` extracts the boundary features too
    (BMask R-CNN: 28x28 from the stride-4 level only) and returns the
    boundary logits beside the mask logits; ``mask_loss`` passes both to
    the head's loss.

    With ``train_mask_on_pred_boxes`` (BMask R-CNN's recipe, detectron2's
    ``TRAIN_ON_PRED_BOXES``) the mask branch trains on the boxes the box
    head predicts for the positive RoIs (the delta of their ground-truth
    class, not clipped, no gradient) instead of the proposals, so its
    training RoIs look like the ones it sees at inference.

    Args:
        boundary_roi_extractor (dict): config of the boundary RoI extractor.
        train_mask_on_pred_boxes (bool): see above. Default: True.
        **kwargs: arguments of mmdet's ``StandardRoIHead``; it needs a
            ``mask_roi_extractor`` of its own (no sharing with the box
            branch) and no ``shared_head``.
    """

    def __init__(self,
                 boundary_roi_extractor: ConfigType,
                 train_mask_on_pred_boxes: bool = True,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if self.with_mask and (self.share_roi_extractor or self.with_shared_head):
            raise ValueError('BMaskRoIHead: the boundary branch needs a mask_roi_extractor of '
                             'its own and no shared_head')
        self.boundary_roi_extractor = MODELS.build(boundary_roi_extractor)
        self.train_mask_on_pred_boxes = train_mask_on_pred_boxes

    def bbox_loss(self, x: Tuple[Tensor], sampling_results: List[SamplingResult]) -> dict:
        bbox_results = super().bbox_loss(x, sampling_results)
        if self.train_mask_on_pred_boxes and self.with_mask:
            self._move_positives_to_predicted_boxes(sampling_results, bbox_results['bbox_pred'])
        return bbox_results

    def _move_positives_to_predicted_boxes(self, sampling_results: List[SamplingResult],
                                           bbox_pred: Tensor) -> None:
        """Replace each ``pos_priors`` by its box-head prediction.

        ``bbox_pred`` holds ``(sum_i len(priors_i), num_classes * 4)``
        deltas in the order of ``bbox2roi([res.priors ...])``, each image's
        positives first.
        """
        start = 0
        for res in sampling_results:
            num_pos = len(res.pos_priors)
            if num_pos:
                # No image shape at hand: unclipped, as detectron2's.
                boxes = self.bbox_head.regress_by_class(
                    res.pos_priors, res.pos_gt_labels, bbox_pred[start:start + num_pos],
                    dict(img_shape=None))
                res.pos_priors = boxes.detach()
            start += len(res.priors)

    def _mask_forward(self,
                      x: Tuple[Tensor],
                      rois: Optional[Tensor] = None,
                      pos_inds: Optional[Tensor] = None,
                      bbox_feats: Optional[Tensor] = None) -> dict:
        """
        Returns:
            dict: ``mask_preds`` and ``boundary_preds``, each
            ``(num_rois, num_classes, 28, 28)``, and ``mask_feats``.
        """
        mask_feats = self.mask_roi_extractor(x[:self.mask_roi_extractor.num_inputs], rois)
        boundary_feats = self.boundary_roi_extractor(
            x[:self.boundary_roi_extractor.num_inputs], rois)
        mask_preds, boundary_preds = self.mask_head(mask_feats, boundary_feats)
        return dict(mask_preds=mask_preds, boundary_preds=boundary_preds, mask_feats=mask_feats)

    def mask_loss(self, x: Tuple[Tensor], sampling_results: List[SamplingResult],
                  bbox_feats: Tensor, batch_gt_instances: InstanceList) -> dict:
        pos_rois = bbox2roi([res.pos_priors for res in sampling_results])
        mask_results = self._mask_forward(x, pos_rois)
        loss_and_target = self.mask_head.loss_and_target(
            mask_preds=mask_results['mask_preds'],
            boundary_preds=mask_results['boundary_preds'],
            sampling_results=sampling_results,
            batch_gt_instances=batch_gt_instances,
            rcnn_train_cfg=self.train_cfg)
        mask_results.update(loss_mask=loss_and_target['loss_mask'])
        return mask_results
