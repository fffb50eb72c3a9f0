"""Tests of the cost levers of :class:`mmifr.models.layers.IFRRefiner` that
change where the solve starts: the learned initial guess
(:class:`~mmifr.models.layers.FixedPointInitializer`) and the warm start
``h0``. Both must leave the fixed point as it is and only cut steps."""
import pytest
import torch

from mmifr.models.layers import FixedPointInitializer, IFRRefiner

C = 16
SOLVER = dict(solver='broyden', max_iter=30, tol=1e-3, backward_max_iter=30)
#: Relative distance within which two solves to ``tol=1e-3`` found the same
#: fixed point (the error of a solve is its residual over ``1 - L``).
SAME = 2e-2


def _refiner(**kwargs):
    torch.manual_seed(0)
    refiner = IFRRefiner(C, C, solver=SOLVER, **kwargs)
    refiner.init_weights()
    return refiner


def _x(n=4, seed=1):
    """Smooth random fields: a 3x3 box blur of noise."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, C, 9, 9, generator=g)
    return torch.nn.functional.avg_pool2d(noise, 3, stride=1, padding=1) * 3


def _scenes(n, seed):
    """Inputs a small predictor can learn: two fixed fields, each seen again
    with a little noise (as the same kind of object recurs in a dataset)."""
    g = torch.Generator().manual_seed(seed)
    fields = _x(n=2, seed=7)
    which = torch.randint(0, 2, (n, ), generator=g)
    return fields[which] + 0.02 * torch.randn(n, C, 9, 9, generator=g)


def _solve(refiner, x, h0=None):
    refiner.eval()
    with torch.no_grad():
        h = refiner(x, h0=h0)
    return h, refiner.deq.last_stats.forward.nstep.float().mean().item()


def test_untrained_initializer_is_the_papers_zero_start():
    plain = _refiner()
    learned = _refiner(initializer=dict(type='FixedPointInitializer', mid_channels=8))
    learned.load_state_dict(plain.state_dict(), strict=False)
    x = _x()
    assert torch.equal(learned.initializer(x), torch.zeros_like(x))
    (h_plain, steps_plain), (h_learned, steps_learned) = _solve(plain, x), _solve(learned, x)
    torch.testing.assert_close(h_learned, h_plain)
    assert steps_learned == steps_plain


def test_learned_initializer_cuts_steps_to_the_same_fixed_point():
    refiner = _refiner(initializer=dict(type='FixedPointInitializer', mid_channels=64))
    held_out = _scenes(8, seed=99)
    h_before, steps_before = _solve(refiner, held_out)
    optim = torch.optim.Adam(refiner.initializer.parameters(), lr=1e-2)
    for i in range(80):
        refiner.train()
        refiner(_scenes(8, seed=i))
        loss = refiner.pop_aux_losses()['loss_ifr_init']
        optim.zero_grad()
        loss.backward()
        optim.step()
    h_after, steps_after = _solve(refiner, held_out)
    assert steps_after <= 0.85 * steps_before, (steps_before, steps_after)
    assert (h_after - h_before).norm() / h_before.norm() < SAME


def test_initializer_loss_trains_the_initializer_only():
    refiner = _refiner(initializer=dict(type='FixedPointInitializer', loss_weight=2.0))
    # Away from zero, so that the loss has a gradient into every layer.
    for p in refiner.initializer.parameters():
        torch.nn.init.normal_(p, std=0.1)
    x = _x().requires_grad_()
    refiner.train()
    h = refiner(x)
    losses = refiner.pop_aux_losses()
    assert set(losses) == {'loss_ifr_init'}
    guess = refiner.initializer(x.detach())
    expected = 2.0 * torch.nn.functional.mse_loss(guess, h.detach())
    torch.testing.assert_close(losses['loss_ifr_init'], expected)
    losses['loss_ifr_init'].backward()
    assert x.grad is None
    assert all(p.grad is None for p in refiner.block.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in refiner.initializer.parameters())


def test_initializer_trains_in_the_unrolled_warmup_without_changing_it():
    """DDP (find_unused_parameters=False) needs a gradient for every
    parameter at every iteration: during the warm-up the initializer
    regresses the unrolled output, which keeps H0 = 0."""
    refiner = _refiner(initializer=dict(type='FixedPointInitializer'))
    for p in refiner.initializer.parameters():
        torch.nn.init.normal_(p, std=0.1)
    x = _x()
    refiner.set_unroll_warmup(4)
    refiner.train()
    unrolled = refiner(x)
    # Four applications of the block from H0 = 0, as the paper's unroll.
    h = torch.zeros_like(x)
    for _ in range(4):
        h = refiner.block(h, x)
    torch.testing.assert_close(unrolled, h)
    losses = refiner.pop_aux_losses()
    assert set(losses) == {'loss_ifr_init'}
    (unrolled.sum() + losses['loss_ifr_init']).backward()
    assert all(p.grad is not None for p in refiner.parameters() if p.requires_grad)
    refiner.set_unroll_warmup(None)
    _solve(refiner, x)
    assert refiner.pop_aux_losses() == {}


def test_warm_start_from_the_fixed_point_finds_it_at_once():
    refiner = _refiner()
    x = _x()
    h_star, steps_cold = _solve(refiner, x)
    # The same object a frame later: the input moved a little.
    moved = x + 0.05 * torch.randn_like(x)
    h_cold, steps_moved_cold = _solve(refiner, moved)
    h_warm, steps_warm = _solve(refiner, moved, h0=h_star)
    assert steps_warm < steps_moved_cold, (steps_warm, steps_moved_cold)
    assert (h_warm - h_cold).norm() / h_cold.norm() < SAME
    _, steps_exact = _solve(refiner, x, h0=h_star)
    assert steps_exact <= 1 < steps_cold


def test_warm_start_overrides_the_initializer(monkeypatch):
    refiner = _refiner(initializer=dict(type='FixedPointInitializer'))
    x = _x()
    h_star, _ = _solve(refiner, x)

    def unused(*args):
        raise AssertionError('the initializer ran although h0 was given')

    monkeypatch.setattr(refiner.initializer, 'forward', unused)
    h_warm, steps = _solve(refiner, x, h0=h_star)
    assert steps <= 2
    assert (h_warm - h_star).norm() / h_star.norm() < SAME


@pytest.mark.parametrize(
    'kwargs,call,message', [
        (dict(mode='unroll', initializer=dict(type='FixedPointInitializer')), None,
         "initializer starts the DEQ solve.*mode='unroll'"),
        (dict(mode='explicit'), 'h0', "h0 .*needs the DEQ solve.*'explicit'"),
        (dict(), 'bad_shape', r'h0 has shape \(4, 16, 3, 3\); the refined feature has'),
    ],
    ids=['initializer-unroll', 'h0-explicit', 'h0-shape'])
def test_bad_initial_guesses_raise(kwargs, call, message):
    with pytest.raises(ValueError, match=message):
        refiner = _refiner(**kwargs)
        x = _x()
        h0 = torch.zeros(4, C, 3, 3) if call == 'bad_shape' else torch.zeros_like(x)
        refiner(x, h0=h0)


@pytest.mark.parametrize(
    'kwargs,message', [
        (dict(mid_channels=0), 'mid_channels must be a positive int, got 0'),
        (dict(loss_weight=-1.0), 'loss_weight must be a positive float, got -1.0'),
    ])
def test_bad_initializer_options_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FixedPointInitializer(C, **kwargs)
