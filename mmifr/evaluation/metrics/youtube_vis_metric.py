"""mmdet's YouTube-VIS metric, runnable with NumPy >= 1.24."""
from contextlib import contextmanager
from typing import Dict, Iterator, List

import numpy as np

from mmdet.evaluation import YouTubeVISMetric
from mmdet.registry import METRICS


@contextmanager
def numpy_float_alias() -> Iterator[None]:
    """Restore ``np.float`` (removed in NumPy 1.24) while inside.

    mmdet 3.3's ``YTVISeval.accumulate`` still calls ``astype(np.float)``,
    so its YouTube-VIS metric crashes on any NumPy mmdet 3.3 otherwise runs
    with; the alias is removed again on the way out.
    """
    added = 'float' not in np.__dict__
    if added:
        np.float = float
    try:
        yield
    finally:
        if added:
            del np.float


@METRICS.register_module()
class NumpyCompatYouTubeVISMetric(YouTubeVISMetric):
    """mmdet's ``YouTubeVISMetric`` (AP, AP50, AP75, AR1, AR10 of the
    YouTube-VIS protocol), its evaluation run under :func:`numpy_float_alias`.
    Same arguments and results."""

    def compute_metrics(self, results: List) -> Dict[str, float]:
        with numpy_float_alias():
            return super().compute_metrics(results)
