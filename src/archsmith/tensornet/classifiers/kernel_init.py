"""An MPS classifier set to the kernel ridge solution of its own feature map, compressed.

The classifier is linear in the product state, ``f^l(x) = W^l . Phi(x)``, so (representer
theorem) the ridge-regression weight on training samples ``x_n`` with one-hot targets ``Y``
lies in their span: ``W = sum_n Phi(x_n) (x) alpha_n`` with ``alpha = (K + lambda I)^-1 Y`` and
``K_nm = Phi(x_n) . Phi(x_m) = prod_j phi(x_nj) . phi(x_mj)`` (Stoudenmire & Schwab 2016, sec. 3
note that the optimal weight has this form). Its bond dimension is up to the number of samples;
:func:`fit_kernel_ridge` truncates it to the model's ``chi`` as TT-SVD would (Oseledets 2011),
without ever forming the ``d^N`` tensor: the truncation at a cut keeps the top eigenvectors of
the reduced density matrix of the left (or right) part,

    rho_k = M_k ((prod_{j>k} G_j) * A) M_k^T,

where ``M_k`` holds each sample's kept left basis coefficients times its local feature at site
``k``, ``G_j`` is site ``j``'s ``n x n`` feature Gram matrix and ``A = alpha alpha^T`` sums the
label index out. The sites left of the label are built from the left, those right of it from
the right, and the label site is the exact projection of ``W`` on both bases.

Cost: one ``n x n`` float64 matrix per site of the longer half of the chain in memory
(``n = min(samples, max_samples)``; about 400 MB for the 1,257 digits training images, 1.1 GB
at the 2,048 cap) and ``O(N n^2 chi d)`` time (1-2 s on digits, one thread).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from archsmith.errors import ArchsmithError
from archsmith.tensornet.classifiers.mps_base import MPSBase

__all__ = ["fit_kernel_ridge", "kernel_ridge_alpha"]

#: eigenvalues of a cut's density matrix below this fraction of the largest count as zero
_NULL_TOLERANCE = 1e-12


def _gram(phi: torch.Tensor, site: int) -> torch.Tensor:
    """Site ``site``'s feature Gram matrix ``[n, n]`` (float64) of ``phi: [n, N, d]``."""
    return phi[:, site] @ phi[:, site].T


def kernel_ridge_alpha(
    phi: torch.Tensor, y: torch.Tensor, num_classes: int, ridge: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel ridge regression on the product kernel of ``phi: [n, N, d]``
    (``K = prod_j G_j``) with one-hot targets ``Y`` of ``y: [n]``.

    Returns:
        ``alpha = (K + ridge I)^-1 Y: [n, C]`` and the leave-one-out outputs ``[n, C]``, each
        sample predicted by the machine fitted without it, in closed form:
        ``Y_i - alpha_i / [(K + ridge I)^-1]_ii``.
    """
    n = phi.shape[0]
    kernel = torch.ones(n, n, dtype=torch.float64)
    for j in range(phi.shape[1]):
        kernel *= _gram(phi, j)
    targets = F.one_hot(y.long(), num_classes).double()
    inverse = torch.linalg.inv(kernel + ridge * torch.eye(n, dtype=torch.float64))
    alpha = inverse @ targets
    return alpha, targets - alpha / inverse.diagonal()[:, None]


def _complements(phi: torch.Tensor, sites: list[int]) -> list[torch.Tensor]:
    """For a sweep over ``sites`` (from one end of the chain inwards), the Gram matrix of the
    sites not yet swept after each step: ``prod_{j beyond k} G_j`` (float64: in float32 the
    truncated eigenvectors, and so the weight, would be off by about 1e-6)."""
    n, num_sites = phi.shape[0], phi.shape[1]
    step = 1 if sites[0] == 0 else -1
    out: dict[int, torch.Tensor] = {}
    acc = torch.ones(n, n, dtype=torch.float64)
    for j in range(num_sites - 1, 0, -1) if step == 1 else range(num_sites - 1):
        acc *= _gram(phi, j)
        k = j - step  # the sweep has then covered every site up to k
        if k in sites:
            out[k] = acc.clone()
    return [out[k] for k in sites]


def _sweep_bases(
    phi: torch.Tensor, label_mix: torch.Tensor, sites: list[int], chi: int
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Truncated bases along ``sites`` (from the chain's end inwards): the cores
    ``[chi_outer, d, chi_inner]`` in sweep order and the samples' coefficients in the last basis
    ``[chi_inner, n]``."""
    n = phi.shape[0]
    coeffs = torch.ones(1, n, dtype=torch.float64)
    cores = []
    for k, rest in zip(sites, _complements(phi, sites) if sites else [], strict=True):
        m = (coeffs[:, None, :] * phi[:, k].T[None, :, :]).reshape(-1, n)  # [chi_outer d, n]
        rho = m @ (rest * label_mix) @ m.T
        values, vectors = torch.linalg.eigh(rho)
        # directions without weight (fewer samples than chi, or a rank-deficient cut) are
        # dropped: those bonds stay zero rather than holding arbitrary null vectors
        kept = values > _NULL_TOLERANCE * values[-1].clamp_min(0)
        basis = vectors[:, kept].flip(-1)[:, :chi]
        cores.append(basis.reshape(coeffs.shape[0], phi.shape[-1], -1))
        coeffs = basis.T @ m
    return cores, coeffs


@torch.no_grad()
def fit_kernel_ridge(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    ridge: float = 1e-2,
    max_samples: int = 2048,
) -> None:
    """Set an :class:`~archsmith.tensornet.classifiers.mps.MPSClassifier`'s sites to the kernel
    ridge solution of its feature map, truncated to its bond dimension (module docstring).

    The label site is then scaled by the temperature that minimises the cross-entropy of the
    kernel machine's leave-one-out outputs on the training samples, so that gradient training
    continues from calibrated logits.

    Args:
        model: the classifier (its cores are overwritten; bonds the data cannot fill stay 0:
            fewer samples than ``chi``, or cuts of lower rank).
        x: ``[n, ...]`` training inputs; y: ``[n]`` class indices.
        ridge: ``lambda``.
        max_samples: use the first this many samples (memory grows as ``n^2`` per site).
    """
    if not isinstance(model, MPSBase):
        raise ArchsmithError(
            f"fit_kernel_ridge: needs an MPSClassifier, got {type(model).__name__}"
        )
    if ridge <= 0:
        raise ArchsmithError(f"fit_kernel_ridge: ridge must be > 0, got {ridge}")
    if max_samples < 1:
        raise ArchsmithError(f"fit_kernel_ridge: max_samples must be >= 1, got {max_samples}")
    if len(x) != len(y) or len(x) == 0:
        raise ArchsmithError(f"fit_kernel_ridge: {len(x)} inputs for {len(y)} labels")
    if int(y.min()) < 0 or int(y.max()) >= model.num_classes:
        raise ArchsmithError(
            f"fit_kernel_ridge: labels must lie in [0, {model.num_classes - 1}], "
            f"got {int(y.min())}..{int(y.max())}"
        )
    x, y = x[:max_samples], y[:max_samples].cpu()
    phi = model.features(x.to(model.cores[0].device)).double().cpu()  # [n, N, d]
    sites, label = model.num_sites, model.label_site
    alpha, held_out = kernel_ridge_alpha(phi, y, model.num_classes, ridge)
    label_mix = alpha @ alpha.T  # sums the label index out of every cut's density matrix
    left_cores, left = _sweep_bases(phi, label_mix, list(range(label)), model.chi)
    right_cores, right = _sweep_bases(phi, label_mix, list(range(sites - 1, label, -1)), model.chi)
    # the label site: W projected on both bases, [D_l, d, C, D_r]
    center = torch.einsum("an,ns,nc,bn->ascb", left, phi[:, label], alpha, right)
    new = [*left_cores, center * _temperature(held_out, y)]
    new += [c.permute(2, 1, 0) for c in reversed(right_cores)]
    for param, value in zip(model.cores, new, strict=True):
        padded = torch.zeros(param.shape, dtype=torch.float64)
        padded[tuple(slice(0, size) for size in value.shape)] = value
        param.copy_(padded.to(param.dtype))


def _temperature(logits: torch.Tensor, y: torch.Tensor, steps: int = 60) -> float:
    """The factor ``t`` in [1e-2, 1e4] minimising the mean cross-entropy of ``t * logits``.

    The logits are held-out ones (leave-one-out): on the training outputs themselves a ridge
    fit that separates every sample would drive ``t`` to the bound. The loss is convex in ``t``,
    so unimodal in ``log t``: golden-section search on ``log t``.
    """
    lo, hi = math.log(1e-2), math.log(1e4)
    ratio = (math.sqrt(5) - 1) / 2

    def loss(log_t: float) -> float:
        return float(F.cross_entropy(logits * math.exp(log_t), y.long()))

    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(steps):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    return math.exp((lo + hi) / 2)
