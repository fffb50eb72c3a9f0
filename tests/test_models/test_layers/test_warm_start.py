"""Tests of the video warm start: :class:`WarmStartMemory`, its config check,
and an :class:`IFRRefiner` solving from the previous frame's equilibria."""
import pytest
import torch

from mmifr.models.layers import IFRRefiner, WarmStartMemory, check_warm_start

C = 16


def _refiner(**kwargs):
    torch.manual_seed(0)
    refiner = IFRRefiner(C, C, **kwargs)
    refiner.init_weights()
    return refiner.eval()


def _x(n=3, seed=1, size=7):
    return torch.randn(n, C, size, size, generator=torch.Generator().manual_seed(seed))


def _nudged(x, scale=0.01, seed=2):
    """The next frame's feature: nearly the same."""
    return x + scale * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))


def _frames(refiner, memory, xs, video=7, first=0):
    """Refine ``xs`` as consecutive frames of one video; outputs and the
    solver steps per sample of each frame."""
    outs, steps = [], []
    for t, x in enumerate(xs):
        memory.new_frame([video], [first + t])
        refiner.pop_stats()
        with memory.attached([refiner]), torch.no_grad():
            outs.append(refiner(x))
        steps.append(torch.cat([s.forward.nstep for s in refiner.pop_stats()]))
    return outs, steps


def _remembered(memory, owner, x, h, frame=0):
    """``memory`` after a frame in which ``owner``'s one call solved ``x`` to ``h``."""
    memory.new_frame(['v'], [frame])
    memory.initial_guess(owner, x)
    memory.remember(x, h)
    return memory


def _cold(refiner, x):
    with torch.no_grad():
        return refiner(x)


# ----------------------------------------------------------------- config


def test_check_warm_start_fills_defaults_and_turns_off():
    assert check_warm_start(None) is None
    assert check_warm_start(dict(enabled=False, budget=2)) is None
    assert check_warm_start(dict()) == dict(
        enabled=True, budget=None, match_thr=0.8, train_loss_weight=0.0)
    assert check_warm_start(dict(budget=2, train_loss_weight=1)) == dict(
        enabled=True, budget=2, match_thr=0.8, train_loss_weight=1.0)


@pytest.mark.parametrize('cfg, message', [
    (dict(budgets=2), "unknown key(s) ['budgets']"),
    (dict(budget=0), 'warm_start.budget must be a positive int'),
    (dict(budget=1.5), 'got 1.5'),
    (dict(budget=True), 'got True'),
    (dict(match_thr=0), 'warm_start.match_thr must be a positive float, got 0'),
    (dict(enabled='yes'), "warm_start.enabled must be True or False, got 'yes'"),
    (dict(budget=2, train_loss_weight=-1), 'warm_start.train_loss_weight must be a float >= 0'),
    (dict(train_loss_weight=1.0), 'train_loss_weight=1.0 needs a warm_start.budget'),
])
def test_check_warm_start_names_the_bad_value(cfg, message):
    with pytest.raises(ValueError, match=message.replace('(', r'\(').replace(')', r'\)')
                       .replace('[', r'\[').replace(']', r'\]')):
        check_warm_start(cfg)


# ----------------------------------------------------------------- frames


@pytest.mark.parametrize('frames, warm', [
    ([('a', [0]), ('a', [1])], True),
    ([('a', [0]), ('a', [3])], True),  # skipped frames: the latest one is the guess
    ([('a', [3]), ('a', [0])], False),  # frame 0: a new pass over a video
    ([('a', [4]), ('a', [2])], False),  # going back
    ([('a', [0]), ('b', [1])], False),  # another video
    ([('a', [0]), ('a', [1, 2])], True),  # a batch of the same video
    ([('a', [0, 1]), ('a', [2, 3])], True),
    ([('a', [0]), (['a', 'b'], [1, 1])], False),  # a batch that mixes videos
    ([(['a', 'b'], [1, 1]), (['a', 'b'], [2, 2])], False),
    ([(None, [0]), (None, [1])], True),  # no video id: frame ids decide
])
def test_new_frame_carries_over_only_within_one_video(frames, warm):
    memory = WarmStartMemory()
    results = []
    for videos, frame_ids in frames:
        videos = videos if isinstance(videos, list) else [videos] * len(frame_ids)
        results.append(memory.new_frame(videos, frame_ids))
    assert results == [False, warm]


def test_new_frame_needs_one_video_per_frame():
    with pytest.raises(ValueError, match='one video id per frame id'):
        WarmStartMemory().new_frame(['a'], [0, 1])


def test_each_sample_starts_from_the_nearest_previous_input():
    owner = object()
    x_prev, h_prev = _x(3), _x(3, seed=9)
    memory = _remembered(WarmStartMemory(match_thr=0.5), owner, x_prev, h_prev)
    memory.new_frame(['v'], [1])
    # This frame: the previous samples 2 and 0 (nudged), in another order,
    # and an unrelated one.
    x = torch.cat([_nudged(x_prev[2:3]), _nudged(x_prev[0:1]), 5 * _x(1, seed=4)])
    h0, matched = memory.initial_guess(owner, x)
    assert matched.tolist() == [True, True, False]
    torch.testing.assert_close(h0[0], h_prev[2])
    torch.testing.assert_close(h0[1], h_prev[0])
    assert not h0[2].any()


def test_calls_are_matched_by_their_order_in_the_frame_and_need_the_same_size():
    memory, owner = WarmStartMemory(), object()
    levels = [_x(1, size=8), _x(1, size=4)]
    memory.new_frame(['v'], [0])
    for i, x in enumerate(levels):
        memory.initial_guess(owner, x)
        memory.remember(x, torch.full_like(x, float(i + 1)))
    memory.new_frame(['v'], [1])
    for i, x in enumerate(levels):
        h0, matched = memory.initial_guess(owner, x)
        assert matched.all() and (h0 == i + 1).all()
    # A new feature size (another image size) starts cold.
    memory.new_frame(['v'], [2])
    h0, matched = memory.initial_guess(owner, _x(1, size=6))
    assert not matched.any() and not h0.any()


def test_a_frame_without_the_call_keeps_the_older_equilibria():
    owner, x = object(), _x(2)
    memory = _remembered(WarmStartMemory(), owner, x, x + 1)
    memory.new_frame(['v'], [1])  # nothing detected: no mask head call
    memory.new_frame(['v'], [2])
    h0, matched = memory.initial_guess(owner, x)
    assert matched.all()
    torch.testing.assert_close(h0, x + 1)


def test_an_empty_call_starts_nothing_and_is_remembered_as_empty():
    owner, x = object(), _x(2)
    memory = _remembered(WarmStartMemory(), owner, x, x + 1)
    memory.new_frame(['v'], [1])
    h0, matched = memory.initial_guess(owner, x[:0])
    assert h0.shape == (0, C, 7, 7) and matched.shape == (0, )
    memory.remember(x[:0], x[:0])
    memory.new_frame(['v'], [2])
    # The latest call's RoIs are the guesses, as every frame's are.
    assert not memory.initial_guess(owner, x)[1].any()


def test_remember_needs_its_initial_guess():
    with pytest.raises(RuntimeError, match='follows initial_guess'):
        WarmStartMemory().remember(_x(1), _x(1))


# ----------------------------------------------------------------- refiner


def test_no_memory_and_a_first_frame_are_the_cold_solve_exactly():
    refiner = _refiner()
    x = _x()
    cold = _cold(refiner, x)
    (first, ), _ = _frames(refiner, WarmStartMemory(), [x])
    assert torch.equal(first, cold)
    assert refiner.warm_start is None  # lent for the frame only
    assert torch.equal(_cold(refiner, x), cold)


def test_warm_start_to_tolerance_takes_fewer_steps_to_the_same_fixed_point():
    refiner = _refiner(test_solver=dict(tol=1e-3))
    x0 = _x()
    x1 = _nudged(x0)
    (_, warm), (cold_steps, warm_steps) = _frames(refiner, WarmStartMemory(), [x0, x1])
    cold = _cold(refiner, x1)
    refiner.pop_stats()
    assert warm_steps.float().mean() <= 0.5 * cold_steps.float().mean()
    rel = (warm - cold).flatten(1).norm(dim=1) / cold.flatten(1).norm(dim=1)
    assert rel.max() < 1e-2


def test_a_budget_runs_k_evaluations_from_the_match_and_solves_the_others():
    refiner = _refiner()
    x0 = _x(2)
    calls = []
    x1 = torch.cat([_nudged(x0[1:2]), 5 * _x(1, seed=4)])  # matched, unmatched
    memory = WarmStartMemory(budget=2)
    memory.new_frame(['v'], [0])
    with memory.attached([refiner]), torch.no_grad():
        h_prev = refiner(x0)
    memory.new_frame(['v'], [1])
    refiner.pop_stats()
    handle = refiner.block.register_forward_hook(lambda m, args, out: calls.append(len(args[0])))
    with memory.attached([refiner]), torch.no_grad():
        h = refiner(x1)
    handle.remove()
    # Two evaluations of the matched sample alone, then the cold solve of the other.
    assert calls[:2] == [1, 1] and all(n == 1 for n in calls)
    expected = refiner.block(refiner.block(h_prev[1:2], x1[:1]), x1[:1])
    torch.testing.assert_close(h[:1], expected)
    torch.testing.assert_close(h[1:], _cold(refiner, x1[1:]))
    steps = [s.forward.nstep.tolist() for s in refiner.pop_stats()]
    assert steps[0] == [2] and steps[1][0] > 2


def test_batches_of_several_samples_match_each_sample_on_its_own():
    refiner = _refiner(test_solver=dict(tol=1e-3))
    x0 = _x(4)
    perm = [3, 1, 0, 2]
    x1 = _nudged(x0[perm])
    memory = WarmStartMemory(budget=1)
    (h_prev, h), _ = _frames(refiner, memory, [x0, x1])
    with torch.no_grad():
        expected = refiner.block(h_prev[perm], x1)
    torch.testing.assert_close(h, expected)


def test_unmatched_samples_start_from_the_learned_guess():
    refiner = _refiner(initializer=dict())
    x0 = _x(2)
    x1 = torch.cat([_nudged(x0[:1]), 5 * _x(1, seed=4)])
    seen = []
    memory = WarmStartMemory()
    (h_prev, ), _ = _frames(refiner, memory, [x0])
    original = refiner.deq.forward

    def spy(func, x, h0=None, **kwargs):
        seen.append(h0)
        return original(func, x, h0=h0, **kwargs)

    refiner.deq.forward = spy
    _frames(refiner, memory, [x1], first=1)
    with torch.no_grad():
        guess = refiner.initializer(x1[1:])
    (h0, ) = seen
    torch.testing.assert_close(h0[1:], guess)
    torch.testing.assert_close(h0[:1], h_prev[:1])


def test_training_consults_the_memory_only_for_a_budget():
    refiner = _refiner().train()
    memory = WarmStartMemory()  # to the tolerance: the same H* from any start

    def consulted(*args):
        raise AssertionError('a training forward consulted the memory')

    memory.initial_guess = consulted
    x = _x()
    for t in range(2):
        memory.new_frame(['v'], [t])
        with memory.attached([refiner]):
            refiner(x)


def test_a_trained_warm_start_is_its_budget_of_evaluations_in_the_graph():
    """What a video model's warm-start loss trains: in training, a memory
    with a budget runs its evaluations from the matched equilibria, and the
    block gets their gradient."""
    refiner = _refiner()
    x0 = _x()
    x1 = _nudged(x0)
    memory = WarmStartMemory(budget=1)
    (h_prev, ), _ = _frames(refiner, memory, [x0])
    refiner.train()
    assert memory.new_frame([7], [1])  # the video of _frames
    with memory.attached([refiner]):
        out = refiner(x1)
    torch.testing.assert_close(out, refiner.block(h_prev, x1))
    out.pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in refiner.block.parameters())


def test_with_an_activation_the_memory_keeps_the_equilibrium_itself():
    """``act_cfg`` acts on what the head reads; the next frame must start from
    ``H*`` (signed), not from its activation, or the warm start would start
    off the fixed point."""
    refiner = _refiner(act_cfg=dict(type='ReLU'))
    x0 = _x()
    memory = WarmStartMemory()
    (out, ), _ = _frames(refiner, memory, [x0])
    refiner.act = None
    h_star = _cold(refiner, x0)
    assert (h_star < 0).any()
    torch.testing.assert_close(out, torch.relu(h_star))
    assert memory.new_frame([7], [1])
    guess, matched = memory.initial_guess(refiner, x0)
    assert matched.all()
    torch.testing.assert_close(guess, h_star)
