"""``tools.lib.benchmark.solves``: the default solves and step counts."""
import torch

from mmifr.models.roi_heads import IFRConvFCMaskHead
from tools.lib.benchmark.solves import PAPER_SOLVER, refiner_defaults, solver_steps


def test_refiner_defaults_are_the_codes_and_copies():
    solver, test_solver = refiner_defaults()
    assert solver['solver'] in ('broyden', 'anderson', 'fixed_point')
    assert test_solver == IFRConvFCMaskHead.default_test_solver
    solver['max_iter'] = -1
    test_solver['tol'] = -1
    assert refiner_defaults()[0].get('max_iter') != -1
    assert IFRConvFCMaskHead.default_test_solver.get('tol') != -1


def _head(**solver):
    torch.manual_seed(0)
    head = IFRConvFCMaskHead(
        num_convs=4, in_channels=8, conv_out_channels=8, num_classes=2, roi_feat_size=4,
        ifr_cfg=dict(type='IFRRefiner', solver=dict(PAPER_SOLVER, **solver), test_solver={}))
    head.init_weights()
    return head


def test_solver_steps_pops_forward_and_backward_counts():
    head = _head(max_iter=6).train()
    x = torch.randn(3, 8, 4, 4, generator=torch.Generator().manual_seed(1))
    head(x).sum().backward()
    steps = solver_steps(head)
    assert set(steps) == {'fwd_steps', 'fwd_rel_residual', 'bwd_steps'}
    assert 1 <= steps['fwd_steps'] <= 6 and 1 <= steps['bwd_steps'] <= 15
    # Popped: nothing left until the next forward.
    assert solver_steps(head) == {}
    with torch.no_grad():
        head.eval()(x)
    assert set(solver_steps(head)) == {'fwd_steps', 'fwd_rel_residual'}


def test_solver_steps_of_a_module_without_refiner():
    assert solver_steps(torch.nn.Conv2d(1, 1, 1)) == {}
