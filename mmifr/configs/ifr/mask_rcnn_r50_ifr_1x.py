# Mask R-CNN R50-FPN 1x with the IFR mask head: configs/ifr/mask_rcnn_r50_ifr_1x.py, new-style.
from mmengine.config import read_base

from mmifr.models import DoubleResidualBlock, IFRConvFCMaskHead, IFRRefiner

with read_base():
    from .._base_.datasets.coco_instance import *  # noqa: F401,F403
    from .._base_.default_runtime import *  # noqa: F401,F403
    from .._base_.models.mask_rcnn_r50_fpn import *  # noqa: F401,F403
    from .._base_.schedules.schedule_1x import *  # noqa: F401,F403
    from ._base_.ifr_runtime import *  # noqa: F401,F403

# The refiner's settings are its defaults, spelled out as in the classic config; inference takes
# the RoI mask heads' default test_solver (not spelled out, so that ifr_cfg.budget=2 alone runs
# its budget at inference).
model.update(  # noqa: F405
    dict(
        roi_head=dict(
            mask_head=dict(
                type=IFRConvFCMaskHead,
                ifr_cfg=dict(
                    type=IFRRefiner,
                    mode='deq',
                    num_steps=4,
                    block=dict(type=DoubleResidualBlock, mid_channels=256, form='bounded'),
                    # The paper's solve (Broyden, 15/15 steps, tol 1e-3), a 5-update history and
                    # 64-RoI chunks (chunks do not change the result; docs/performance.md).
                    solver=dict(
                        solver='broyden',
                        max_iter=15,
                        tol=1e-3,
                        backward_max_iter=15,
                        solver_kwargs=dict(memory=5),
                        backward_solver_kwargs=dict(memory=5),
                        chunk_size=64))))))
