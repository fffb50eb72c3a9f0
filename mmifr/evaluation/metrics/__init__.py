from .youtube_vis_metric import NumpyCompatYouTubeVISMetric, numpy_float_alias

__all__ = ['NumpyCompatYouTubeVISMetric', 'numpy_float_alias']
