"""The previous video frame's equilibria, as the next frame's initial guesses."""
from contextlib import contextmanager
from typing import Dict, Hashable, Iterable, Iterator, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

#: Keys of ``warm_start`` (a video model's config key, see
#: :class:`~mmifr.models.vis.VideoWarmStartMixin`) and their defaults.
#: ``match_thr``: the largest input distance at which, on the training clips
#: of both demo video models, at least 99 % of the matched samples' previous
#: equilibria were nearer the new one than the zero start is (MaskTrack R-CNN's
#: RoIs: 0.8; SipMask's feature maps: any, 1.5 tested; docs/performance.md).
#: ``train_loss_weight``: weight of a video model's training loss on its
#: warm-started solves (0: off; see :class:`~mmifr.models.vis.IFRMaskTrackRCNN`).
WARM_START_DEFAULTS = dict(enabled=True, budget=None, match_thr=0.8, train_loss_weight=0.0)


class _Solved(NamedTuple):
    x: Tensor  # (M, C, H, W) what a refiner was given
    h: Tensor  # (M, C, H, W) its equilibrium


def check_warm_start(cfg: Optional[dict]) -> Optional[dict]:
    """``cfg`` with defaults filled in, or ``None`` when off.

    Args:
        cfg (dict, optional): any keys of :data:`WARM_START_DEFAULTS`;
            ``None`` or ``enabled=False``: off.

    Raises:
        ValueError: naming the unknown key or the bad value.
    """
    if cfg is None:
        return None
    unknown = sorted(set(cfg) - set(WARM_START_DEFAULTS))
    if unknown:
        raise ValueError(f'warm_start has unknown key(s) {unknown}; allowed keys: '
                         f'{list(WARM_START_DEFAULTS)}')
    cfg = {**WARM_START_DEFAULTS, **cfg}
    if not isinstance(cfg['enabled'], bool):
        raise ValueError(f"warm_start.enabled must be True or False, got {cfg['enabled']!r}")
    budget = cfg['budget']
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)
                               or budget <= 0):
        raise ValueError('warm_start.budget must be a positive int (block evaluations per warm '
                         f'started solve) or None (solve to the tolerance), got {budget!r}')
    thr = cfg['match_thr']
    if isinstance(thr, bool) or not isinstance(thr, (int, float)) or not thr > 0:
        raise ValueError(f'warm_start.match_thr must be a positive float, got {thr!r}')
    cfg['match_thr'] = float(thr)
    weight = cfg['train_loss_weight']
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
        raise ValueError('warm_start.train_loss_weight must be a float >= 0 (0: no training '
                         f'loss on warm-started solves), got {weight!r}')
    if weight and budget is None:
        raise ValueError(f'warm_start.train_loss_weight={weight} needs a warm_start.budget: a '
                         'solve to the tolerance reaches the same equilibrium from any start, '
                         'so only a fixed budget of evaluations has anything to learn')
    cfg['train_loss_weight'] = float(weight)
    return cfg if cfg['enabled'] else None


class WarmStartMemory:
    """The equilibria of a video's latest frame, per refiner call, from which
    the next frame's solves start (a warm start, as StreamDEQ recycles its
    representation from frame to frame).

    A video model owns one (it is state of its inference, not of the
    weights), tells it where each frame belongs (:meth:`new_frame`) and
    lends it to its refiners while the frame runs (:meth:`attached`). A
    refiner's ``k``-th call in a frame is matched with its ``k``-th call in
    the previous one (a dense head's tower runs once per pyramid level, in
    order; a RoI head once per stage). Within a call, each sample (an
    image's feature map, or a RoI) starts from the equilibrium of the
    previous call's sample whose input ``X`` is nearest, if ``X`` differs
    from it by at most ``match_thr`` relative to its own norm. ``H* =
    F(H*; X)`` is a function of ``X`` alone: the nearest ``X`` is the guess
    nearest the new ``H*``, whatever label or box the RoI has, so a RoI
    needs no box matching. Others, every sample of a new video, and every
    sample after a change of feature size, start cold.

    Args:
        budget (int, optional): block evaluations of a warm-started solve
            (StreamDEQ runs 1-2); ``None``: the refiner's inference solve, to
            its tolerance. Cold samples always get the refiner's inference.
        match_thr (float): the largest ``||X - X_prev|| / ||X||`` of a
            match. Default: 0.8 (:data:`WARM_START_DEFAULTS`).
    """

    def __init__(self,
                 budget: Optional[int] = None,
                 match_thr: float = WARM_START_DEFAULTS['match_thr']) -> None:
        self.budget = budget
        self.match_thr = match_thr
        self._video: Optional[Hashable] = None
        self._frame: Optional[int] = None
        self._previous: Dict[Tuple[int, int], _Solved] = {}
        self._current: Dict[Tuple[int, int], _Solved] = {}
        self._calls: Dict[int, int] = {}
        self._slot: Optional[Tuple[int, int]] = None

    def reset(self) -> None:
        """Forget every equilibrium: the next frame starts cold."""
        self._video = self._frame = None
        self._previous, self._current, self._calls = {}, {}, {}

    def new_frame(self, video_ids: Sequence[Hashable], frame_ids: Sequence[int]) -> bool:
        """Start a frame (or a batch of frames), each given by its video and
        frame index.

        The memory carries over only when every frame is of the video seen
        last and comes after the frame seen last; a new video (or a frame 0),
        a batch that mixes videos, or going back resets it.

        Returns:
            bool: whether this frame's solves may start warm.
        """
        if not video_ids or len(video_ids) != len(frame_ids):
            raise ValueError(f'new_frame needs one video id per frame id, got {list(video_ids)} '
                             f'and {list(frame_ids)}')
        videos = set(video_ids)
        first = min(frame_ids)
        warm = (len(videos) == 1 and self._video in videos and self._frame is not None
                and first > self._frame)
        if warm:
            # A call a frame skipped (no RoIs) keeps its older equilibria.
            self._previous.update(self._current)
        else:
            self.reset()
        self._current, self._calls = {}, {}
        self._video = video_ids[0] if len(videos) == 1 else None
        self._frame = max(frame_ids)
        return warm

    @contextmanager
    def attached(self, refiners: Iterable[nn.Module]) -> Iterator[None]:
        """Lend the memory to ``refiners`` (their ``warm_start``) while inside."""
        refiners = list(refiners)
        for refiner in refiners:
            refiner.warm_start = self
        try:
            yield
        finally:
            for refiner in refiners:
                refiner.warm_start = None

    def initial_guess(self, refiner: nn.Module, x: Tensor) -> Tuple[Tensor, Tensor]:
        """The start of this call's solve, and which samples it matched.

        Args:
            refiner (nn.Module): the caller (its calls are counted per frame).
            x (Tensor): ``(N, C, H, W)`` the refiner's input ``X``.

        Returns:
            tuple: ``h0`` ``(N, C, H, W)`` (the matched samples' previous
            equilibria, zeros elsewhere) and ``matched`` ``(N,)`` bool.
        """
        index = self._calls.get(id(refiner), 0)
        self._calls[id(refiner)] = index + 1
        self._slot = (id(refiner), index)
        h0 = torch.zeros_like(x)
        matched = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        prev = self._previous.get(self._slot)
        if prev is None or prev.x.shape[1:] != x.shape[1:] or len(x) == 0 or len(prev.x) == 0:
            return h0, matched
        flat = x.flatten(1).float()
        dist, nearest = torch.cdist(flat, prev.x.flatten(1).float()).min(dim=1)
        matched = dist <= self.match_thr * flat.norm(dim=1)
        h0[matched] = prev.h[nearest[matched]].to(h0.dtype)
        return h0, matched

    def remember(self, x: Tensor, h: Tensor) -> None:
        """Keep the equilibria ``h`` of the call :meth:`initial_guess` started."""
        if self._slot is None:
            raise RuntimeError('remember() follows initial_guess() of the same call')
        self._current[self._slot] = _Solved(x.detach(), h.detach())
        self._slot = None
