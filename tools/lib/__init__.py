"""What the benchmark and analysis tools share; not part of the installable ``mmifr`` package.

It ships beside the scripts (``mmifr/.mim/tools/lib`` in a wheel), as mmdet keeps its model-zoo
runners out of its package. ``import mmifr`` imports none of it. The scripts put the folder above
``tools/`` on ``sys.path`` (the checkout, or ``mmifr/.mim``) and import it as ``tools.lib``.

- :mod:`.models`, :mod:`.roi_features`, :mod:`.progress`, :mod:`.memory`: what every tool needs:
  the one model loader (detectors and data built from configs), the mask RoI features of
  ground-truth boxes, progress messages on stderr, the process's resident memory;
- :mod:`.benchmark`: the cost benchmark (``tools/analysis_tools/benchmark_ifr_cost.py``), the
  video warm start's (``benchmark_video_warm_start.py``), the model-zoo benchmark's in-process
  measurement and the solver as first released;
- :mod:`.outputs`: writing a tool's JSON results (the folder made first);
- :mod:`.trained_run`: a training run of ``tools/train.py`` and its test: launching them, the
  metrics and checkpoint they leave, whether a finished run may be reused for a config;
- :mod:`.seed_study`: the statistics and tables of a seed study (``tools/benchmark_model_zoo.py``);
- :mod:`.model_zoo_table`: the demo model-zoo table from the seed studies' result files
  (``tools/write_model_zoo_table.py``);
- :mod:`.mask_head_probe`: mask quality and tower response on ground-truth boxes
  (``tools/analysis_tools/probe_mask_head.py``).
"""
