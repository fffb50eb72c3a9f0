from .dense_heads import *  # noqa: F401,F403
from .detectors import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .roi_heads import *  # noqa: F401,F403
from .task_modules import *  # noqa: F401,F403
from .tracking_heads import *  # noqa: F401,F403
from .utils import *  # noqa: F401,F403
from .vis import *  # noqa: F401,F403
