"""Tests of activation checkpointing in the refiner (``IFRRefiner(with_cp=True)``):
the same forward and gradients, the unrolled evaluations recomputed in
backward, the implicit solve untouched."""
import pytest
import torch

from mmifr.models.layers import IFRRefiner

C = 16
#: refiner configs whose training forward unrolls block evaluations
UNROLLED = {
    'budget': dict(budget=2),
    'budget_fpc': dict(budget=3, fp_correction=dict(gamma=0.8)),
    'unroll': dict(mode='unroll', num_steps=3),
    'explicit': dict(mode='explicit', num_steps=2),
}


def _refiner(**kwargs):
    torch.manual_seed(0)
    refiner = IFRRefiner(C, C, **kwargs)
    refiner.init_weights()
    return refiner.train()


def _blocks(refiner):
    return list(refiner.blocks) if refiner.mode == 'explicit' else [refiner.block]


def _forward_backward(refiner):
    """Output, input and parameter gradients, and block calls in forward /
    in backward."""
    calls = []
    for block in _blocks(refiner):
        # A hook inside the block: the recompute stops once the last saved
        # tensor is back, before the block's own forward hook would run.
        block.norm1.register_forward_hook(lambda *args: calls.append(1))
    x = torch.randn(3, C, 7, 7, generator=torch.Generator().manual_seed(1)).requires_grad_()
    h = refiner(x)
    states = refiner.pop_states()
    forward_calls = len(calls)
    loss = h.square().mean() + sum(s.mean() for s in states[:-1])
    loss.backward()
    grads = [p.grad.clone() for p in refiner.parameters() if p.grad is not None]
    return h.detach(), x.grad, grads, forward_calls, len(calls) - forward_calls


@pytest.mark.parametrize('key', sorted(UNROLLED))
def test_with_cp_recomputes_each_evaluation_with_the_same_gradients(key):
    plain = _forward_backward(_refiner(**UNROLLED[key]))
    cp = _forward_backward(_refiner(**UNROLLED[key], with_cp=True))
    torch.testing.assert_close(cp[0], plain[0])
    torch.testing.assert_close(cp[1], plain[1])
    assert len(cp[2]) == len(plain[2]) > 0
    for a, b in zip(cp[2], plain[2]):
        torch.testing.assert_close(a, b)
    # Every evaluation runs once more in backward, and only with with_cp.
    assert plain[4] == 0 and cp[3] == plain[3] and cp[4] == cp[3]


def test_with_cp_leaves_inference_and_the_implicit_solve_alone():
    plain = _forward_backward(_refiner(solver=dict(max_iter=6)))
    cp = _forward_backward(_refiner(solver=dict(max_iter=6), with_cp=True))
    torch.testing.assert_close(cp[2], plain[2])
    assert cp[4] == plain[4]
    refiner = _refiner(budget=2, with_cp=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(refiner(torch.ones(1, C, 5, 5)),
                                   _refiner(budget=2).eval()(torch.ones(1, C, 5, 5)))


def test_with_cp_keeps_the_input_and_one_tensor_per_later_evaluation():
    """A budget of K checkpointed evaluations from H0 = 0 keeps X and
    h_1 .. h_{K-1} for backward: the zero start costs no memory."""
    refiner = _refiner(budget=3, with_cp=True)
    x = torch.randn(2, C, 6, 6)
    kept = {}

    def pack(t):
        kept[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        refiner(x)
    large = [n for n in kept.values() if n >= x.numel() * x.element_size()]
    assert len(large) == 3 and sum(kept.values()) < 3.1 * x.numel() * x.element_size()


@pytest.mark.parametrize('value', ['yes', 1, None])
def test_with_cp_must_be_a_bool(value):
    with pytest.raises(ValueError, match=f'with_cp must be True or False, got {value!r}'):
        IFRRefiner(C, C, with_cp=value)
