"""mmifr: Implicit Feature Refinement for MMDetection 3.x.

Importing the package registers its models and hooks in mmdet's and
mmengine's registries, so a config needs only
``custom_imports = dict(imports=['mmifr'], allow_failed_imports=False)``.
"""
from . import engine, models, ops, utils  # noqa: F401  (registration side effects)
from .version import __version__

__all__ = ['__version__']
