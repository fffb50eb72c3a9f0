"""Tools set a refiner's inference solve through ``IFRRefiner.set_test_solver``
only: a direct write would bypass its validation (and, since the attribute is
private, silently do nothing)."""
import glob
import os.path as osp
import re

import pytest
import torch

from mmifr.models.layers import IFRRefiner

TOOLS = osp.join(osp.dirname(__file__), osp.pardir, osp.pardir, 'tools')
DIRECT_WRITE = re.compile(r'\.(test_overrides|_test_solver)\b\s*=(?!=)')


def test_no_tool_writes_the_inference_solve_directly():
    offenders = []
    for path in glob.glob(osp.join(TOOLS, '**', '*.py'), recursive=True):
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                if DIRECT_WRITE.search(line):
                    offenders.append(f'{osp.relpath(path, TOOLS)}:{lineno}: {line.strip()}')
    assert not offenders, offenders


def test_the_public_setter_validates_and_changes_the_inference():
    refiner = IFRRefiner(8, 8).eval()
    x = torch.randn(2, 8, 5, 5)
    with pytest.raises(ValueError, match=r"test_solver has unknown key\(s\) \['max_iters'\]"):
        refiner.set_test_solver(dict(max_iters=2))
    refiner.set_test_solver(dict(solver='unroll', max_iter=3))
    with torch.no_grad():
        refiner(x)
    assert refiner.deq.last_stats.forward.nfev == 3
