"""``tools.lib.benchmark.syncs``: counting where the host waits for the device."""
import pytest
import torch

from mmifr.ops import deq_fixed_point
from tools.lib.benchmark.syncs import SyncCounter


def test_counts_each_operation_that_hands_a_device_value_to_python():
    x = torch.randn(10)
    waits = [
        lambda: bool(x.sum() > 0), lambda: x[0].item(), lambda: x.tolist(),
        lambda: int(x.argmax()), lambda: float(x[1]), lambda: x.nonzero(),
        lambda: torch.nonzero(x > 0), lambda: x[x > 0],
        lambda: x.clone().__setitem__(x > 0, 0.0), lambda: [0, 1, 2][x.argmax().clamp(max=2)]
    ]
    for wait in waits:
        with SyncCounter() as syncs:
            wait()
        assert syncs.calls == 1 and syncs.cuda is None
    # Device work, shapes and integer indexing make the host wait for nothing.
    with SyncCounter() as syncs:
        y = (x * 2).sum(0, keepdim=True)
        x[torch.arange(3)], x[2:5], x.shape[0], x.numel(), len(y), torch.where(x > 0, x, y)
    assert syncs.calls == 0


def test_tensor_is_restored_after_the_block():
    before = {name: torch.Tensor.__dict__.get(name) for name in ('item', '__bool__',
                                                                 '__getitem__')}
    nonzero = torch.nonzero
    with pytest.raises(ValueError):
        with SyncCounter():
            raise ValueError('the block fails')
    assert {name: torch.Tensor.__dict__.get(name) for name in before} == before
    assert torch.nonzero is nonzero
    with SyncCounter() as syncs:
        pass
    torch.ones(1).item()
    assert syncs.calls == 0


def test_a_fixed_step_solve_waits_for_nothing_a_stopping_one_every_step():
    def f(h, x):
        return torch.tanh(0.5 * h + x)

    x = torch.randn(6, 8)
    with SyncCounter() as unroll:
        deq_fixed_point(f, x, solver='unroll', max_iter=3)
    with SyncCounter() as broyden:
        _, stats = deq_fixed_point(f, x, solver='broyden', max_iter=8, tol=1e-6)
    assert unroll.calls == 0
    assert broyden.calls >= int(stats.forward.nstep.max())


@pytest.mark.cuda
def test_pytorch_reports_the_same_waits_on_cuda(real_cuda):
    x = torch.randn(100, device=real_cuda)
    with SyncCounter(real_cuda) as syncs:
        bool(x.sum() > 0)
        x.max().item()
        x[x > 0]
        (x * 2).sum()
    assert syncs.calls == 3
    assert syncs.cuda >= 3
    with SyncCounter(real_cuda) as none:
        (x * 2).sum()
        x[torch.arange(3, device=real_cuda)]
    assert none.calls == 0 and none.cuda == 0
