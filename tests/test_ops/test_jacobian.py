"""Tests of the Hutchinson Jacobian estimate used by ``jac_reg``."""
import pytest
import torch

from mmifr.ops import jacobian_frobenius

F64 = torch.float64


def _linear(batch=4, dim=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(dim, dim, generator=g, dtype=F64, requires_grad=True)
    z = torch.randn(batch, dim, generator=g, dtype=F64, requires_grad=True)
    return a, z


def test_estimate_is_unbiased_for_a_linear_map():
    a, z = _linear()
    torch.manual_seed(0)
    est = jacobian_frobenius(z @ a.T, z, num_probes=4000)
    exact = a.detach().pow(2).sum() / a.shape[0]  # ||A||_F^2 / D, the same for every sample
    assert abs(est.item() - exact.item()) < 0.05 * exact.item()


def test_one_probe_of_an_orthogonal_map_is_exact_in_expectation_and_noisy():
    q, _ = torch.linalg.qr(torch.randn(8, 8, dtype=F64, generator=torch.Generator().manual_seed(1)))
    z = torch.randn(3, 8, dtype=F64, requires_grad=True)
    torch.manual_seed(0)
    values = torch.stack([jacobian_frobenius(z @ q.T, z) for _ in range(300)])
    assert abs(values.mean().item() - 1.0) < 0.1
    assert values.std() > 0.05  # one probe is a random estimate, not a constant


def test_estimate_is_differentiable_in_the_map_parameters():
    a, z = _linear()
    torch.manual_seed(0)
    est = jacobian_frobenius(z @ a.T, z, num_probes=2)
    (grad, ) = torch.autograd.grad(est, a)
    # d/dA of sum(eps^T A)^2 is non-zero; gradient descent on it shrinks A.
    assert grad.abs().sum() > 0
    with torch.no_grad():
        smaller = a - 0.1 * grad
    torch.manual_seed(0)
    assert jacobian_frobenius(z @ smaller.T, z, num_probes=2) < est


def test_jacobian_depends_on_the_point_for_a_nonlinear_map():
    z = torch.tensor([[0.0, 0.0], [10.0, 10.0]], dtype=F64, requires_grad=True)
    torch.manual_seed(0)
    # tanh saturates at 10: that sample's Jacobian is ~0, the first's is I.
    est = jacobian_frobenius(torch.tanh(z), z, num_probes=2000)
    assert abs(est.item() - 0.5) < 0.05


def test_empty_batch_is_zero_and_keeps_the_graph():
    a = torch.randn(3, 3, requires_grad=True)
    z = torch.zeros(0, 3, requires_grad=True)
    est = jacobian_frobenius(z @ a.T, z)
    assert est.item() == 0.0
    est.backward()
    assert a.grad is not None and a.grad.abs().sum() == 0


def test_shape_mismatch_names_both_shapes():
    z = torch.randn(2, 3, requires_grad=True)
    with pytest.raises(ValueError, match=r'\(2, 6\) vs \(2, 3\)'):
        jacobian_frobenius(torch.cat([z, z], 1), z)
