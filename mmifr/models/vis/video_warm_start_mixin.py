"""Video inference whose IFR solves start from the previous frame's equilibria."""
from typing import List

from torch import Tensor

from mmdet.structures import TrackDataSample, TrackSampleList
from mmdet.utils import OptConfigType
from mmifr.models.layers import IFRRefiner, WarmStartMemory, check_warm_start


class VideoWarmStartMixin:
    """Mixin for an mmdet video model (``BaseMOTModel``) with IFR heads: at
    inference each frame's solves start from the equilibria of the frame
    before (:class:`~mmifr.models.layers.WarmStartMemory`), as StreamDEQ
    recycles its representation; consecutive frames have nearly the same
    features, so their fixed points are nearly the same.

    The model's own ``predict`` is run once per frame of a clip, with the
    memory lent to every :class:`~mmifr.models.layers.IFRRefiner` of the
    model; tracking and outputs are the model's. The memory belongs to this
    model: it carries over between ``predict`` calls of the same video (mmdet
    tests a video frame by frame) and is reset at a new video. The weights
    are untouched, and so is training unless the model trains its warm
    start (``trains_warm_start``); off, ``predict`` is the model's. A refiner
    trained with a fixed ``budget`` runs its evaluations from zero, as it
    was trained; the warm start serves the refiners that solve.

    Args:
        warm_start (dict, optional): ``enabled`` (default True), ``budget``
            (block evaluations of a warm-started solve; default ``None``:
            the refiner's inference solve, to its tolerance) and
            ``match_thr`` (default 0.8: the largest relative distance of the
            inputs of a matched sample), each of which may be given alone;
            ``train_loss_weight`` (default 0: off) where the model trains
            its warm start (``trains_warm_start``).
            ``None`` or ``enabled=False``: off (every frame solves cold).
        *args, **kwargs: arguments of the video model.
    """
    #: Whether the model's ``loss`` has a warm-start term
    #: (``warm_start.train_loss_weight``).
    trains_warm_start = False

    def __init__(self, *args, warm_start: OptConfigType = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.set_warm_start(warm_start)

    def set_warm_start(self, warm_start: OptConfigType) -> None:
        """Set the warm start (what ``warm_start`` configures; the public way
        for tools to compare settings on one model), with a fresh memory.

        Args:
            warm_start (dict, optional): as the constructor's argument.
        """
        self.warm_start_cfg = check_warm_start(warm_start)
        weight = self.warm_start_cfg['train_loss_weight'] if self.warm_start_cfg else 0.0
        if weight and not self.trains_warm_start:
            raise ValueError(f'{type(self).__name__} has no warm-start training loss; remove '
                             f'warm_start.train_loss_weight={weight}')
        self.warm_start_memory = (
            WarmStartMemory(self.warm_start_cfg['budget'], self.warm_start_cfg['match_thr'])
            if self.warm_start_cfg else None)

    def predict(self, inputs: Tensor, data_samples: TrackSampleList, rescale: bool = True,
                **kwargs) -> TrackSampleList:
        """The model's ``predict`` of a ``(1, T, C, H, W)`` clip, frame by
        frame, each frame's IFR solves warm-started. Frames are told apart by
        their ``video_id`` and ``frame_id`` metainfo (mmdet's
        ``PackTrackInputs`` packs both; without a ``video_id`` the frame
        index alone marks a new video, as for mmdet's trackers)."""
        memory = self.warm_start_memory
        if memory is None:
            return super().predict(inputs, data_samples, rescale=rescale, **kwargs)
        if inputs.dim() != 5 or len(data_samples) != 1:
            raise ValueError(f'{type(self).__name__} predicts one (1, T, C, H, W) clip at a time; '
                             f'got inputs {tuple(inputs.shape)} and {len(data_samples)} samples')
        refiners: List[IFRRefiner] = [m for m in self.modules() if isinstance(m, IFRRefiner)]
        clip = data_samples[0]
        for t in range(len(clip)):
            frame = clip[t]
            if 'frame_id' not in frame.metainfo:
                raise ValueError('warm_start needs the frame_id of each frame in its metainfo '
                                 "(mmdet's PackTrackInputs packs it)")
            memory.new_frame([frame.metainfo.get('video_id')], [frame.frame_id])
            single = TrackDataSample(metainfo=clip.metainfo)
            single.video_data_samples = [frame]
            with memory.attached(refiners):
                super().predict(inputs[:, t:t + 1], [single], rescale=rescale, **kwargs)
        return data_samples
