"""DMRG-style two-site sweeps for the MPS classifier.

Stoudenmire & Schwab, "Supervised Learning with Quantum-Inspired Tensor Networks" (2016), sec. 4
and fig. 6: at the bond ``(j, j+1)`` the two site tensors are merged into a bond tensor

    B^l_{s_j s_{j+1}} = A_j^{s_j l} A_{j+1}^{s_{j+1}}            (label on site j, sweeping right)

which a few gradient steps improve with every other tensor fixed: the model is linear in ``B``,

    f^l(x_n) = B^l . Phi~_n,    Phi~_n = L_n (x) phi(x_j) (x) phi(x_{j+1}) (x) R_n,

where ``L_n`` and ``R_n`` are the contractions of the sites left and right of the bond with the
sample's local features (the "environments", fig. 7). The updated ``B`` is split back by an SVD,
``B = U S V^T``, truncated to the bond dimension ``chi`` (and a relative singular-value cutoff);
``U`` becomes site ``j`` and ``S V^T`` site ``j+1``, which now carries the label, and the sweep moves
one bond on. Sweeping left mirrors this (``U S`` keeps the label and moves left).

One *sweep* here leaves the label where it started: from ``label_site`` right to the last site,
left to the first, and right again to ``label_site``, so every bond is optimised twice (once per
direction) and the parameter shapes never change (kept bonds are zero-padded to ``chi``). The
environments are built once per pass and extended by one site after each bond, so a sweep costs
``O(N)`` site contractions, not ``O(N^2)``. Environments are stored normalised with a per-sample
log-scale (as in :mod:`~archsmith.tensornet.classifiers._chain`) and the sweep runs in float64.

The paper minimises a squared error; here the cost is the task's loss by default
(cross-entropy for ``digits``; ``loss="mse"`` in :func:`dmrg_fit` gives the paper's). The
default bond update is a damped Gauss-Newton step (``ridge``, see :func:`_optimise_bond`); plain
gradient steps of ``lr / curvature`` (``ridge=None``) are the paper's recipe but need many more
sweeps. Before a sweep the MPS is brought into mixed-canonical form about the label, so the SVD
truncation of each bond tensor is the best one in the norm of the whole weight tensor.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch

from archsmith.errors import ArchsmithError
from archsmith.tasks.evaluation import evaluate
from archsmith.tensornet.classifiers._chain import mps_logits, rescale
from archsmith.tensornet.classifiers.mps_base import MPSBase
from archsmith.tensornet.core.contract import contract

if TYPE_CHECKING:
    from archsmith.tasks import Task

__all__ = [
    "DMRGResult",
    "bond_features",
    "dmrg_fit",
    "dmrg_sweep",
    "merge_bond",
    "split_bond",
    "squared_error",
]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# an environment: normalised vectors [n, D] and their per-sample log-scale [n]
_Env = tuple[torch.Tensor, torch.Tensor]


def merge_bond(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Contract the site tensors of one bond into ``B: [D_l, d, d, C, D_r]``.

    Exactly one of them carries the label: ``left: [D_l, d, C, k]`` with ``right: [k, d, D_r]``,
    or ``left: [D_l, d, k]`` with ``right: [k, d, C, D_r]``.
    """
    if left.ndim == 4 and right.ndim == 3:
        return torch.einsum("asck,kub->asucb", left, right)
    if left.ndim == 3 and right.ndim == 4:
        return torch.einsum("ask,kucb->asucb", left, right)
    raise ValueError(
        f"one site must carry the label: got {tuple(left.shape)}, {tuple(right.shape)}"
    )


def split_bond(
    bond: torch.Tensor,
    chi: int,
    *,
    move: Literal["right", "left"],
    cutoff: float = 0.0,
    pad_to: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Split ``B: [D_l, d, d, C, D_r]`` by a truncated SVD.

    Args:
        chi: the most singular values kept.
        move: ``"right"``: the label goes to the right site (``U`` left, ``S V^T`` right);
            ``"left"``: it stays on the left site (``U S`` left, ``V^T`` right).
        cutoff: singular values below ``cutoff * s_max`` are dropped too (at least one stays).
        pad_to: zero-pad the new bond to this dimension (keeps parameter shapes fixed; the
            padding does not change the function).

    Returns:
        ``(left, right, rank)``: the two site tensors and the number of kept singular values.
        By Eckart-Young their contraction is the closest rank-``rank`` bond tensor to ``B``.
    """
    dl, d1, d2, c, dr = bond.shape
    if move == "right":
        mat = bond.reshape(dl * d1, d2 * c * dr)
    else:
        mat = bond.permute(0, 1, 3, 2, 4).reshape(dl * d1 * c, d2 * dr)
    u, s, vh = torch.linalg.svd(mat, full_matrices=False)
    keep = int((s > cutoff * s[0]).sum()) if s[0] > 0 else 1
    rank = max(1, min(chi, keep))
    u, s, vh = u[:, :rank], s[:rank], vh[:rank]
    if move == "right":
        left_mat, right_mat = u, s[:, None] * vh
    else:
        left_mat, right_mat = u * s, vh
    width = rank if pad_to is None else max(pad_to, rank)
    left_mat = torch.nn.functional.pad(left_mat, (0, width - rank))
    right_mat = torch.nn.functional.pad(right_mat, (0, 0, 0, width - rank))
    if move == "right":
        return left_mat.reshape(dl, d1, width), right_mat.reshape(width, d2, c, dr), rank
    return left_mat.reshape(dl, d1, c, width), right_mat.reshape(width, d2, dr), rank


def squared_error(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The paper's cost (eq. 6): ``1/2 sum_l (f^l(x_n) - delta_{l, y_n})^2``, averaged over n.

    Args:
        logits: ``[n, C]``; y: ``[n]`` class indices.
    """
    target = torch.nn.functional.one_hot(y, logits.shape[1]).to(logits.dtype)
    return 0.5 * (logits - target).pow(2).sum(1).mean()


def _canonicalize(cores: list[torch.Tensor], label_site: int) -> None:
    """Bring the MPS into mixed-canonical form about ``label_site``, in place.

    Sites left of the label become left-orthogonal (``sum_{a,s} A[a,s,b] A[a,s,b'] = delta``
    on their kept bond values) and sites right of it right-orthogonal, by QR decompositions
    whose triangular factors are pushed into the label site: the function is unchanged. In this
    gauge the plain SVD truncation of a bond tensor is the best one in the norm of the whole
    weight tensor ``W`` (Schollwoeck 2011, sec. 4.4), as the paper's sweeps assume.
    """
    for j in range(label_site):
        dl, d, dr = cores[j].shape
        q, r = torch.linalg.qr(cores[j].reshape(dl * d, dr))
        k = q.shape[1]
        q = torch.nn.functional.pad(q, (0, dr - k))
        r = torch.nn.functional.pad(r, (0, 0, 0, dr - k))  # [dr, dr]
        cores[j] = q.reshape(dl, d, dr)
        cores[j + 1] = torch.tensordot(r, cores[j + 1], dims=1)
    for j in range(len(cores) - 1, label_site, -1):
        dl, d, dr = cores[j].shape
        q, r = torch.linalg.qr(cores[j].reshape(dl, d * dr).T)  # A = r^T q^T
        k = q.shape[1]
        q = torch.nn.functional.pad(q, (0, dl - k))
        r = torch.nn.functional.pad(r, (0, 0, 0, dl - k))  # [dl, dl]
        cores[j] = q.T.reshape(dl, d, dr)
        cores[j - 1] = torch.tensordot(cores[j - 1], r.T, dims=1)


def _grow_left(env: _Env, core: torch.Tensor, phi: torch.Tensor) -> _Env:
    """Absorb site ``core: [D_l, d, D_r]`` (features ``phi: [n, d]``) into a left environment."""
    vec, logs = rescale(contract("na,ns,asb->nb", env[0], phi, core), (1,))
    return vec, env[1] + logs


def _grow_right(env: _Env, core: torch.Tensor, phi: torch.Tensor) -> _Env:
    """Absorb site ``core: [D_l, d, D_r]`` into a right environment (from its right side)."""
    vec, logs = rescale(contract("ns,asb,nb->na", phi, core, env[0]), (1,))
    return vec, env[1] + logs


def _identity_env(phi: torch.Tensor) -> _Env:
    return phi.new_ones(phi.shape[0], 1), phi.new_zeros(phi.shape[0])


def _left_envs(cores: Sequence[torch.Tensor], phi: torch.Tensor, upto: int) -> list[_Env]:
    """``envs[k]`` = contraction of sites ``0..k-1``, for ``k = 0..upto``."""
    envs = [_identity_env(phi)]
    for k in range(upto):
        envs.append(_grow_left(envs[-1], cores[k], phi[:, k]))
    return envs


def _right_envs(cores: Sequence[torch.Tensor], phi: torch.Tensor, downto: int) -> dict[int, _Env]:
    """``envs[k]`` = contraction of sites ``k..N-1``, for ``k = downto..N``."""
    n_sites = len(cores)
    envs = {n_sites: _identity_env(phi)}
    for k in range(n_sites - 1, downto - 1, -1):
        envs[k] = _grow_right(envs[k + 1], cores[k], phi[:, k])
    return envs


@dataclass
class _SweepConfig:
    chi: int
    lr: float
    steps: int
    cutoff: float
    loss_fn: LossFn
    ridge: float | None


def _curvature(proj: torch.Tensor, iters: int = 10) -> float:
    """Largest eigenvalue of ``proj^T proj / n`` by power iteration (``proj: [n, P]``).

    The mean cross-entropy of logits ``proj @ W`` has a Hessian bounded by this value (the
    softmax's own curvature is at most 1), so steps of ``lr / curvature`` with ``lr < 2`` are
    stable however the environments are scaled: ``lr`` is a step size relative to the bond's
    curvature, comparable across bonds and samples.
    """
    n = proj.shape[0]
    v = proj.abs().sum(0)
    value = 0.0
    for _ in range(iters):
        w = proj.T @ (proj @ v) / n
        value = float(w.norm() / v.norm().clamp_min(1e-300))
        if value == 0.0:
            return 1.0
        v = w / w.norm()
    return value


def bond_features(
    left: _Env, right: _Env, phi_j: torch.Tensor, phi_k: torch.Tensor
) -> torch.Tensor:
    """The rows ``Phi~_n`` of the paper's fig. 6b: ``[n, D_l * d * d * D_r]``.

    With every site but the bond ``(j, j+1)`` fixed, the logits are linear in the bond tensor:
    ``f(x_n) = Phi~_n @ B.permute(0, 1, 2, 4, 3).reshape(-1, C)``.

    Args:
        left, right: the environments (normalised vectors ``[n, D_l]``, ``[n, D_r]`` and their
            log-scales ``[n]``) of the sites left of ``j`` and right of ``j+1``.
        phi_j, phi_k: ``[n, d]`` local features of the two bond sites.
    """
    proj = contract("na,ns,nu,nb->nasub", left[0], phi_j, phi_k, right[0])
    return proj.reshape(proj.shape[0], -1) * (left[1] + right[1]).exp()[:, None]


def _optimise_bond(
    bond: torch.Tensor,
    left: _Env,
    right: _Env,
    phi_pair: tuple[torch.Tensor, torch.Tensor],
    y: torch.Tensor,
    cfg: _SweepConfig,
) -> torch.Tensor:
    """``cfg.steps`` steps on ``bond: [D_l, d, d, C, D_r]`` with the environments fixed.

    ``cfg.ridge is None``: gradient steps of ``lr / curvature``. Otherwise each gradient is
    multiplied by ``(G + ridge * mean(diag G))^-1`` with ``G = Phi~^T Phi~ / n``, the bond's
    Gauss-Newton matrix: for the paper's squared error a step with ``lr = 1`` solves the bond's
    ridge-regularised least-squares problem outright; for cross-entropy it is Newton's step with
    the softmax curvature replaced by a constant, and the ridge keeps directions that no sample
    excites (and the paper's ``lambda |W|^2``-like shrinkage) in check.
    """
    if cfg.steps == 0:
        return bond
    dl, d1, d2, c, dr = bond.shape
    proj = bond_features(left, right, *phi_pair)
    weight = bond.permute(0, 1, 2, 4, 3).reshape(-1, c)  # [D_l d d D_r, C]
    if cfg.ridge is None:
        step = cfg.lr / _curvature(proj)

        def direction(grad: torch.Tensor) -> torch.Tensor:
            return step * grad
    else:
        gram = proj.T @ proj / proj.shape[0]
        shift = cfg.ridge * float(gram.diagonal().mean()) + torch.finfo(gram.dtype).tiny
        factor = torch.linalg.cholesky(gram + shift * torch.eye(len(gram), dtype=gram.dtype))

        def direction(grad: torch.Tensor) -> torch.Tensor:
            return cfg.lr * torch.cholesky_solve(grad, factor)

    for _ in range(cfg.steps):
        weight = weight.detach().requires_grad_()
        (grad,) = torch.autograd.grad(cfg.loss_fn(proj @ weight, y), weight)
        weight = weight - direction(grad)
    return weight.detach().reshape(dl, d1, d2, dr, c).permute(0, 1, 2, 4, 3)


def _pass_right(
    cores: list[torch.Tensor],
    phi: torch.Tensor,
    y: torch.Tensor,
    start: int,
    stop: int,
    cfg: _SweepConfig,
) -> None:
    """Move the label from site ``start`` to ``stop > start``, optimising each bond on the way."""
    if start >= stop:
        return
    left = _left_envs(cores, phi, start)[start]
    rights = _right_envs(cores, phi, start + 2)
    for j in range(start, stop):
        bond = _optimise_bond(
            merge_bond(cores[j], cores[j + 1]),
            left,
            rights[j + 2],
            (phi[:, j], phi[:, j + 1]),
            y,
            cfg,
        )
        cores[j], cores[j + 1], _ = split_bond(
            bond, cfg.chi, move="right", cutoff=cfg.cutoff, pad_to=cores[j].shape[-1]
        )
        left = _grow_left(left, cores[j], phi[:, j])


def _pass_left(
    cores: list[torch.Tensor],
    phi: torch.Tensor,
    y: torch.Tensor,
    start: int,
    stop: int,
    cfg: _SweepConfig,
) -> None:
    """Move the label from site ``start`` to ``stop < start``, optimising each bond on the way."""
    if start <= stop:
        return
    lefts = _left_envs(cores, phi, start - 1)
    right = _right_envs(cores, phi, start + 1)[start + 1]
    for j in range(start - 1, stop - 1, -1):
        bond = _optimise_bond(
            merge_bond(cores[j], cores[j + 1]),
            lefts[j],
            right,
            (phi[:, j], phi[:, j + 1]),
            y,
            cfg,
        )
        cores[j], cores[j + 1], _ = split_bond(
            bond, cfg.chi, move="left", cutoff=cfg.cutoff, pad_to=cores[j + 1].shape[0]
        )
        right = _grow_right(right, cores[j + 1], phi[:, j + 1])


def dmrg_sweep(
    model: MPSBase,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    *,
    lr: float = 1.0,
    steps: int = 2,
    cutoff: float = 0.0,
    chi: int | None = None,
    ridge: float | None = 1.0,
) -> float:
    """One two-site sweep over ``model`` on the batch ``(x, y)``; updates ``model`` in place.

    Args:
        x: ``[n, *]`` inputs; y: their targets for ``loss_fn``.
        lr: step on each bond tensor, relative to the largest curvature of the bond's loss
            (stable below about 2).
        steps: gradient steps per bond; ``0`` moves the label around the chain and truncates
            without changing anything else (the function is kept exactly unless ``chi``
            truncates).
        cutoff: relative singular-value cutoff of the splits.
        chi: the most singular values kept per bond (default and upper limit: ``model.chi``).
        ridge: ``None``: plain gradient steps; a number: Gauss-Newton steps with this relative
            ridge (see :func:`_optimise_bond`), with ``lr`` around 1.

    Returns:
        ``loss_fn`` on the batch after the sweep.
    """
    if steps < 0 or not lr > 0 or (chi is not None and chi < 1):
        raise ArchsmithError(f"dmrg: need steps >= 0, lr > 0, chi >= 1; got {steps}, {lr}, {chi}")
    chi = model.chi if chi is None else min(chi, model.chi)
    cfg = _SweepConfig(chi=chi, lr=lr, steps=steps, cutoff=cutoff, loss_fn=loss_fn, ridge=ridge)
    with torch.no_grad():
        cores = [c.detach().double().clone() for c in model.cores]
        phi = model.features(x).double()
    y = y.to(phi.device)
    home, last = model.label_site, len(cores) - 1
    _canonicalize(cores, home)
    with torch.enable_grad():
        _pass_right(cores, phi, y, home, last, cfg)
        _pass_left(cores, phi, y, last, 0, cfg)
        _pass_right(cores, phi, y, 0, home, cfg)
    with torch.no_grad():
        for param, core in zip(model.cores, cores, strict=True):
            param.copy_(core)
        return float(loss_fn(mps_logits(cores, phi, home), y))


@dataclass
class DMRGResult:
    """The outcome of :func:`dmrg_fit`: metrics of the best sweep and the per-sweep history."""

    val: dict[str, float]
    test: dict[str, float]
    best_sweep: int
    history: list[dict[str, Any]] = field(default_factory=list)


def dmrg_fit(
    model: MPSBase,
    task: Task,
    *,
    sweeps: int = 4,
    lr: float = 1.0,
    steps: int = 2,
    cutoff: float = 0.0,
    chi: int | None = None,
    ridge: float | None = 1.0,
    loss: Literal["task", "mse"] = "task",
    batch_size: int | None = None,
    seed: int = 0,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> DMRGResult:
    """Train ``model`` on ``task`` by DMRG sweeps; it ends with the weights of the best sweep.

    Args:
        sweeps: number of sweeps (each optimises every bond once in each direction).
        lr, steps, cutoff, chi, ridge: as in :func:`dmrg_sweep`.
        loss: ``"task"``: the task's loss (cross-entropy on digits); ``"mse"``: the paper's
            squared error (eq. 6).
        batch_size: samples per sweep (``None``: the whole train split, as in the paper);
            smaller batches give one sweep per batch, in a seeded random order.
        callback: called with each sweep's history row.

    Returns:
        validation and test metrics of the weights with the best validation metric.
    """
    if sweeps < 1:
        raise ArchsmithError(f"sweeps: must be >= 1, got {sweeps}")
    if batch_size is not None and batch_size < 1:
        raise ArchsmithError(f"batch_size: must be >= 1, got {batch_size}")
    train = task.train
    size = len(train) if batch_size is None else min(batch_size, len(train))
    metric, greater = task.primary_metric, task.greater_is_better
    gen = torch.Generator().manual_seed(seed)
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    history: list[dict[str, Any]] = []
    for sweep in range(1, sweeps + 1):
        order = torch.randperm(len(train), generator=gen)
        losses = []
        for start in range(0, len(train) - size + 1, size):
            idx = order[start : start + size]
            losses.append(
                dmrg_sweep(
                    model,
                    train.x[idx],
                    train.y[idx],
                    squared_error if loss == "mse" else task.loss,
                    lr=lr,
                    steps=steps,
                    cutoff=cutoff,
                    chi=chi,
                    ridge=ridge,
                )
            )
        if not all(math.isfinite(v) for v in losses):
            raise ArchsmithError(f"dmrg: loss is not finite after sweep {sweep} (try a lower lr)")
        val = evaluate(model, task, "val")
        row = {
            "sweep": sweep,
            "train_loss": sum(losses) / len(losses),
            **{f"val_{k}": v for k, v in val.items()},
        }
        history.append(row)
        if callback is not None:
            callback(row)
        score = val[metric] if greater else -val[metric]
        if best is None or score > best[0]:
            best = (score, sweep, copy.deepcopy(model.state_dict()))
    assert best is not None
    model.load_state_dict(best[2])
    return DMRGResult(
        val=evaluate(model, task, "val"),
        test=evaluate(model, task, "test"),
        best_sweep=best[1],
        history=history,
    )
