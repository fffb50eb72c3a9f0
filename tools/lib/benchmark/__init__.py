"""The reusable part of the benchmark tools.

``tools/analysis_tools/benchmark_ifr_cost.py`` (what IFR costs against the
stock mask head) is a command line over these modules, one per concern:

- :mod:`.timing`: wall time, the machine;
- :mod:`.solves`, :mod:`.released_solver`: the solves compared, their step
  counts, and the solver as first released;
- :mod:`.syncs`: host-device synchronisations, counted;
- :mod:`.ifr_cost_head`, :mod:`.ifr_cost_e2e`, :mod:`.ifr_cost_syncs`,
  :mod:`.ifr_cost_accuracy`: the benchmark's four sections;
- :mod:`.ifr_cost_targets`: the ratios against the project's cost targets;
- :mod:`.ifr_cost_report`: its markdown and files.

``tools/analysis_tools/benchmark_deq.py`` (the DEQ op against torchdeq) is a
command line over :mod:`.deq_op`; ``tools/benchmark_model_zoo.py`` times each
model with :mod:`.model_inference`.

Not imported by ``import mmifr``: nothing outside the tools needs it.
"""
from .ifr_cost_accuracy import accuracy_settings, run_accuracy
from .ifr_cost_e2e import E2E_MODELS, run_e2e
from .ifr_cost_head import HEAD_ROWS, RESULT_PREFIX, head_memory_worker, run_head
from .ifr_cost_report import markdown, write_report
from .ifr_cost_syncs import run_syncs
from .ifr_cost_targets import TARGETS, target_rows
from .solves import PAPER_SOLVER
from .timing import machine, median_time

__all__ = [
    'E2E_MODELS', 'HEAD_ROWS', 'PAPER_SOLVER', 'RESULT_PREFIX', 'TARGETS', 'accuracy_settings',
    'head_memory_worker', 'machine', 'markdown', 'median_time', 'run_accuracy', 'run_e2e',
    'run_head', 'run_syncs', 'target_rows', 'write_report'
]
