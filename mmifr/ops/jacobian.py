"""Jacobian regularisation of a fixed-point map (Bai et al., ICML 2021).

A DEQ's solver needs few steps when ``J_f = df/dz`` at the fixed point is
small (its spectral radius bounds the fixed-point iteration's rate, and
Broyden's too in practice). ``||J_f||_F^2`` upper-bounds the squared
spectral norm and is cheap to estimate without forming ``J_f``: for
``eps ~ N(0, I)``, ``E ||eps^T J_f||^2 = ||J_f||_F^2`` (Hutchinson), and
``eps^T J_f`` is one vector-Jacobian product. Added to the training loss,
the estimate makes the learned block contract faster: fewer solver steps
to a tolerance, or better solutions within a step budget
(docs/performance.md measures what it bought on the demo).
"""
import torch
from torch import Tensor


def jacobian_frobenius(fz: Tensor, z: Tensor, num_probes: int = 1) -> Tensor:
    """Differentiable Hutchinson estimate of ``||df/dz||_F^2 / D``.

    Args:
        fz (Tensor): ``(N, ...)`` ``f(z)``, computed from ``z`` with a graph.
        z (Tensor): ``(N, ...)`` the point (``requires_grad``), e.g. the
            detached fixed point.
        num_probes (int): Gaussian probes averaged (variance drops as 1/n).

    Returns:
        Tensor: scalar, the squared Frobenius norm of each sample's Jacobian
        divided by its size ``D`` (so ~1 for an isometry whatever the
        feature size), averaged over samples. Its graph reaches the
        parameters and inputs of ``f`` (double backward).
    """
    if fz.shape != z.shape:
        raise ValueError(f'f(z) and z differ in shape: {tuple(fz.shape)} vs {tuple(z.shape)}')
    if fz.numel() == 0:
        # No samples: a zero that still belongs to f's graph.
        return fz.sum() * 0.0
    total = fz.new_zeros((), dtype=torch.float32)
    for _ in range(num_probes):
        eps = torch.randn_like(fz)
        # create_graph keeps f's graph: the penalty's own backward needs it.
        (vjp, ) = torch.autograd.grad(fz, z, eps, create_graph=True)
        total = total + vjp.float().pow(2).sum()
    return total / (num_probes * fz.numel())
