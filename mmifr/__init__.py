"""mmifr: Implicit Feature Refinement for MMDetection 3.x.

Importing the package

- checks that the installed mmengine, mmcv (with its compiled ops) and mmdet are versions mmifr
  supports (:mod:`mmifr.version_check`), before anything imports them for real;
- registers the ``mmifr::`` config scope with mmengine (``_mmifr_config_scope``), so that
  ``_base_ = 'mmifr::ifr/...'`` resolves in any process that imported mmifr before parsing;
- registers its models and hooks in mmdet's and mmengine's registries, so a config needs only
  ``custom_imports = dict(imports=['mmifr'], allow_failed_imports=False)``, and creates the
  ``mmifr`` scope's registries (:mod:`mmifr.registry`) for configs inherited by ``mmifr::``.
"""
from .version_check import check_dependencies

check_dependencies()

import _mmifr_config_scope  # noqa: E402

_mmifr_config_scope.install()

# Registration side effects.
from . import engine, evaluation, models, ops, registry, utils  # noqa: E402,F401
from .version import __version__  # noqa: E402

__all__ = ['__version__']
