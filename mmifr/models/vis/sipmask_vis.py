"""SipMask for video instance segmentation (Cao et al., ECCV 2020)."""
from typing import Optional

import torch
from torch import Tensor

from mmdet.models.mot import BaseMOTModel
from mmdet.registry import MODELS
from mmdet.structures import TrackSampleList
from mmdet.utils import OptConfigType, OptMultiConfig


@MODELS.register_module()
class SipMaskVIS(BaseMOTModel):
    """SipMask's video model: the single-stage :class:`SipMask` detector, a
    :class:`~mmifr.models.tracking_heads.SipMaskTrackHead` on its FPN, and
    mmdet's ``MaskTrackRCNNTracker`` (SipMask matches as MaskTrack R-CNN
    does, with the same weights of score, IoU and label).

    Training takes one key and one reference frame per clip, as mmdet's
    ``MaskTrackRCNN``: the detector's losses on the key frame, the matching
    loss between the key frame's positives and the reference frame's
    ground truths. Inference runs frame by frame on a batch of one clip.

    Args:
        detector (dict): a SipMask detector (its ``bbox_head`` a
            :class:`~mmifr.models.dense_heads.SipMaskHead`).
        track_head (dict): the tracking branch.
        tracker (dict): Default: none (then ``predict`` is unavailable).
        data_preprocessor (dict, optional): a ``TrackDataPreprocessor``.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 detector: dict,
                 track_head: dict,
                 tracker: Optional[dict] = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(data_preprocessor, init_cfg)
        self.detector = MODELS.build(detector)
        if not hasattr(self.detector.bbox_head, 'get_mask_positives'):
            raise TypeError(f'SipMaskVIS needs a SipMask head as detector.bbox_head, got '
                            f'{type(self.detector.bbox_head).__name__}')
        self.track_head = MODELS.build(track_head)
        if tracker is not None:
            self.tracker = MODELS.build(tracker)

    def loss(self, inputs: Tensor, data_samples: TrackSampleList, **kwargs) -> dict:
        """Losses of ``(N, 2, C, H, W)`` clips of a key and a reference frame."""
        if inputs.dim() != 5 or inputs.size(1) != 2:
            raise ValueError('SipMaskVIS trains on (N, 2, C, H, W) inputs, a key and a reference '
                             f'frame per clip; got {tuple(inputs.shape)}')
        keys = [sample.get_key_frames()[0] for sample in data_samples]
        refs = [sample.get_ref_frames()[0] for sample in data_samples]
        batch = torch.arange(len(inputs))
        key_inds = torch.tensor([s.key_frames_inds[0] for s in data_samples])
        ref_inds = torch.tensor([s.ref_frames_inds[0] for s in data_samples])
        x = self.detector.extract_feat(inputs[batch, key_inds].contiguous())
        ref_x = self.detector.extract_feat(inputs[batch, ref_inds].contiguous())

        head = self.detector.bbox_head
        losses = head.loss(x, keys)
        positives = head.get_mask_positives()
        losses.update(
            self.track_head.loss(
                x, ref_x, [boxes for boxes, _ in positives],
                [key.gt_instances.instances_ids[inds] for key, (_, inds) in zip(keys, positives)],
                [ref.gt_instances for ref in refs]))
        return losses

    def predict(self, inputs: Tensor, data_samples: TrackSampleList, rescale: bool = True,
                **kwargs) -> TrackSampleList:
        """Detect, segment and track the frames of one ``(1, T, C, H, W)``
        clip; the tracker carries its memory from call to call and is reset
        at a clip's frame 0. Each frame's sample gets ``pred_instances`` and
        ``pred_track_instances`` (with ``instances_id``)."""
        if inputs.dim() != 5 or len(data_samples) != 1:
            raise ValueError('SipMaskVIS predicts one (1, T, C, H, W) clip at a time; got '
                             f'inputs {tuple(inputs.shape)} and {len(data_samples)} samples')
        clip = data_samples[0]
        if clip[0].frame_id == 0:
            self.tracker.reset()
        for t in range(len(clip)):
            frame = clip[t]
            x = self.detector.extract_feat(inputs[:, t].contiguous())
            (frame.pred_instances, ) = self.detector.bbox_head.predict(x, [frame], rescale=rescale)
            frame.pred_track_instances = self.tracker.track(
                model=self, feats=x, data_sample=frame, rescale=rescale, **kwargs)
        return [clip]
