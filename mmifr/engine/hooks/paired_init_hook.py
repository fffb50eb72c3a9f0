"""Initial weights that do not depend on the head a model was built with."""
import torch
from mmengine.hooks import Hook

from mmdet.registry import HOOKS


@HOOKS.register_module()
class PairedInitHook(Hook):
    """Reseed torch's generator with the run's seed just before mmengine
    initialises the model's weights.

    mmengine seeds once, before the model is built; building draws from the
    generator (every ``nn.Conv2d`` draws its default weights), so the draws of
    ``init_weights()`` start wherever the construction left the generator.
    Two models of one seed that differ in one head (a stock and an IFR mask
    head) therefore start their shared parts (neck, box head) from different
    weights, and a "paired" comparison pairs only the data order. With this
    hook both models initialise the parts they share identically (the
    construction order up to the differing head being the same); the data
    order, drawn from numpy's generator, is unchanged. mmengine calls
    ``before_run`` right before it initialises the weights.

    Without it (the default) the runs are those of plain mmengine.
    """
    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        torch.manual_seed(runner.seed)
