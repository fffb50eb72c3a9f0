"""``tools.lib.benchmark.ifr_cost_syncs``: the waits of one IFR solve, per solve setting."""
from argparse import Namespace

from tools.lib.benchmark.ifr_cost_syncs import UNROLL_STEPS, run_syncs


def test_fixed_step_solves_make_the_op_wait_for_nothing():
    section = run_syncs(Namespace(device='cpu', seed=0, sync_rois=4))
    rows = section['rows']
    assert section['config'] == 'configs/ifr/mask_rcnn_r50_ifr_1x.py'
    for k in UNROLL_STEPS:
        row = rows[f'unroll K={k}']
        assert row['op_calls'] == 0 and row['fwd_steps'] == k
        # The refiner's own non-finite check (IFRRefiner._record) is one wait.
        assert row['forward_calls'] == 1
        assert row['op_cuda'] is None  # PyTorch's count is CUDA's alone
    # Per-RoI stopping decides every step which RoIs continue.
    config = rows['test solve (config)']
    assert config['op_calls'] >= config['fwd_steps'] and config['test_solver'] == dict(
        tol=1e-2, output='fz')
    training = rows['training solve (forward + backward)']
    assert training['backward_calls'] >= training['bwd_steps'] > 0
    assert training['forward_calls'] == training['op_calls'] + 1
