"""Registries of the ``mmifr`` scope: children of mmdet's, holding nothing of their own.

mmifr registers its classes in mmdet's registries (``@MODELS.register_module()`` of
``mmdet.registry``), so that mmdet configs use them with ``default_scope = 'mmdet'``. These
children exist for configs inherited through the ``mmifr::`` scope: mmengine tags every
``type``-dict of such a base config that has no scope yet with ``_scope_='mmifr'`` (the IFR hooks
of ``configs/ifr/_base_/ifr_hooks.py``, for instance) and builds it in the registry of that scope.
A child registry looks a type up in itself, then in its parents, so ``mmifr`` resolves to
everything of mmdet and mmengine, mmifr's own classes included.

mmengine imports this module by name (``<scope>.registry``) when it switches to the scope; each
registry's location imports ``mmifr``, which registers the classes.
"""
from mmdet import registry as mmdet
from mmengine.registry import Registry

SCOPE = 'mmifr'
_LOCATIONS = ['mmifr']


def _child(parent: Registry) -> Registry:
    return Registry(parent.name, parent=parent, scope=SCOPE, locations=_LOCATIONS)


RUNNERS = _child(mmdet.RUNNERS)
RUNNER_CONSTRUCTORS = _child(mmdet.RUNNER_CONSTRUCTORS)
LOOPS = _child(mmdet.LOOPS)
HOOKS = _child(mmdet.HOOKS)
DATASETS = _child(mmdet.DATASETS)
DATA_SAMPLERS = _child(mmdet.DATA_SAMPLERS)
TRANSFORMS = _child(mmdet.TRANSFORMS)
MODELS = _child(mmdet.MODELS)
MODEL_WRAPPERS = _child(mmdet.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child(mmdet.WEIGHT_INITIALIZERS)
OPTIMIZERS = _child(mmdet.OPTIMIZERS)
OPTIM_WRAPPERS = _child(mmdet.OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child(mmdet.OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child(mmdet.PARAM_SCHEDULERS)
METRICS = _child(mmdet.METRICS)
EVALUATOR = _child(mmdet.EVALUATOR)
TASK_UTILS = _child(mmdet.TASK_UTILS)
VISUALIZERS = _child(mmdet.VISUALIZERS)
VISBACKENDS = _child(mmdet.VISBACKENDS)
LOG_PROCESSORS = _child(mmdet.LOG_PROCESSORS)
