"""``tools.lib.benchmark.ifr_cost_accuracy``: the inference solves evaluated.

``run_accuracy`` itself runs end to end in ``tests/test_tools/test_analysis_tools.py``.
"""
import json
from argparse import Namespace

from tools.lib.benchmark.ifr_cost_accuracy import accuracy_settings
from tools.lib.benchmark.solves import refiner_defaults


def test_settings_order_labels_and_overrides():
    args = Namespace(outputs=['z', 'fz'], max_iters=[1, 15], tols=[1e-1, 1e-3],
                     extra_settings='[{"solver": "fixed_point", "max_iter": 3}]')
    settings = accuracy_settings(args)
    _, default = refiner_defaults()
    assert settings == [
        ('max_iter=1, tol=1e-3, output=z', dict(max_iter=1, tol=1e-3, output='z')),
        ('max_iter=15, tol=1e-3, output=z', dict(max_iter=15, tol=1e-3, output='z')),
        # tol 1e-3 at max_iter=15 is the row above, not repeated.
        ('max_iter=15, tol=0.1, output=z', dict(max_iter=15, tol=0.1, output='z')),
        ('max_iter=1, tol=1e-3, output=fz', dict(max_iter=1, tol=1e-3, output='fz')),
        ('max_iter=15, tol=1e-3, output=fz', dict(max_iter=15, tol=1e-3, output='fz')),
        ('max_iter=15, tol=0.1, output=fz', dict(max_iter=15, tol=0.1, output='fz')),
        ('solver=fixed_point, max_iter=3', dict(solver='fixed_point', max_iter=3)),
        ('project default test_solver ' + json.dumps(default), default),
    ]


def test_settings_are_fresh_dicts():
    args = Namespace(outputs=['z'], max_iters=[2], tols=[], extra_settings=None)
    first = accuracy_settings(args)
    first[-1][1]['tol'] = -1
    assert accuracy_settings(args)[-1][1] == refiner_defaults()[1]
