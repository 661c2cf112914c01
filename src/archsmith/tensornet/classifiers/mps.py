"""Matrix-product-state classifier (Stoudenmire & Schwab 2016), registered as ``mps``.

The classifier is a weight tensor ``W^l_{s_1 ... s_N}`` in MPS form,

    W^l = sum_{a} A_1^{s_1}[a_1] A_2^{s_2}[a_1 a_2] ... A_j^{s_j l}[a_{j-1} a_j] ... A_N^{s_N}[a_{N-1}],

with bond dimension ``chi`` and the label index ``l`` on one site ``j`` (``label_site``), applied
to the product state of local features: ``f^l(x) = W^l . Phi(x)`` (eq. 2 and 5 of the paper).
The logits are ``f^l`` itself; train them with the task's cross-entropy by gradient descent (the
ordinary trainer) or by DMRG-style two-site sweeps (:mod:`~archsmith.tensornet.classifiers.dmrg`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Literal

import torch
from torch import nn

from archsmith.errors import ArchsmithError
from archsmith.layers.aux_loss import LossFn
from archsmith.options import Range
from archsmith.recipe import Recipe
from archsmith.registry import register_model
from archsmith.tensornet.classifiers._chain import mean_square_weight, mps_logits
from archsmith.tensornet.classifiers.dmrg import dmrg_sweep
from archsmith.tensornet.classifiers.feature_map import LOCAL_DIM, local_feature_map
from archsmith.tensornet.classifiers.kernel_init import fit_kernel_ridge
from archsmith.tensornet.classifiers.mps_base import MPSBase

if TYPE_CHECKING:
    from archsmith.tasks import Task

__all__ = ["MPSClassifier", "mps", "pixel_path"]


class MPSClassifier(MPSBase):
    """An MPS of ``num_sites`` sites, bond dimension ``chi`` and a label index on one site.

    Args:
        num_sites: ``N``, one site per input feature.
        num_classes: ``C``, the dimension of the label index.
        chi: bond dimension of every inner bond (the two outer bonds have dimension 1).
        label_site: the site that carries the label index (default ``N // 2``).
        feature_scale, feature_norm: the local feature map (see
            :func:`~archsmith.tensornet.classifiers.feature_map.local_feature_map`); the default
            norm is ``"l1"`` (``"l2"`` with ``init="kernel"``): it divides the paper's unit
            vectors by ``cos + sin``, which leaves every prediction of given weights unchanged
            and makes the identity initialisation exact.
        local_dim: ``d``, the local dimension of the feature map (``2``: the paper's
            ``[cos, sin]``; more: its binomial generalisation, see ``local_feature_map``).
        order: the input feature each site reads, in chain order (default: row-major; the
            factory's ``pixel_order`` builds it with :func:`pixel_path`).
        init_std: standard deviation of the noise added to the identity initialisation.
        norm_penalty: ``lambda``; in ``"gd"`` mode the training loss gains
            ``lambda ||W||^2 / d^N`` (:meth:`mean_square_weight`), the ridge penalty of the model
            ``f = W . Phi``, linear in its full weight tensor. It regularises the function, not
            the cores' gauge-dependent entries (which the trainer's weight decay shrinks), and
            pulls the MPS towards the minimum-norm fit of a kernel machine with the product
            kernel ``prod_j phi(x_j) . phi(x'_j)``.
        init: ``"identity"`` (below) or ``"kernel"``: before training, the trainer's
            :meth:`on_fit_start` sets the sites to the kernel ridge solution of the feature map
            on the training set, truncated to ``chi``
            (:func:`~archsmith.tensornet.classifiers.kernel_init.fit_kernel_ridge`, with ridge
            ``kernel_ridge``); use unit (``"l2"``) features and ``chi`` of 32 or more with it.
        train_mode: ``"gd"``: :meth:`training_loss` is the task loss and the trainer's
            optimizer updates every site; ``"dmrg"``: each training batch runs one DMRG sweep
            (:func:`~archsmith.tensornet.classifiers.dmrg.dmrg_sweep`) with the options below
            and the trainer's optimizer sees no gradients.
        dmrg_lr, dmrg_steps, dmrg_cutoff, dmrg_ridge: the sweep's step size, steps per bond,
            relative singular-value cutoff and Gauss-Newton ridge (``None``: plain gradient
            steps), as in :func:`~archsmith.tensornet.classifiers.dmrg.dmrg_sweep`.

    Site tensors (``cores[j]``): ``[1, d, chi]`` first, ``[chi, d, chi]`` inside, ``[chi, d, 1]``
    last, with the label core ``[D_l, d, C, D_r]``. Initialisation: the identity on the bond
    indices for every feature and label value, plus Gaussian noise (Efthymiou et al. 2019,
    TorchMPS). With ``"l1"`` features each transfer matrix ``sum_s phi_s(x) A^s`` is then the
    identity for any pixel, so the untrained chain outputs about 1 for every input and label;
    with the unit vectors it would output ``prod_j (cos + sin)``, up to ``2^(N/2)``.

    Shapes: ``x: [B, *] (B x N features in [0, 1]) -> [B, C]``.
    """

    def __init__(
        self,
        num_sites: int,
        num_classes: int,
        chi: int = 10,
        *,
        label_site: int | None = None,
        feature_scale: float = 1.0,
        feature_norm: Literal["l2", "l1"] | None = None,
        local_dim: int = LOCAL_DIM,
        order: Sequence[int] | None = None,
        init_std: float = 1e-2,
        norm_penalty: float = 0.0,
        init: Literal["identity", "kernel"] = "identity",
        kernel_ridge: float = 1e-2,
        train_mode: Literal["gd", "dmrg"] = "gd",
        dmrg_lr: float = 1.0,
        dmrg_steps: int = 2,
        dmrg_cutoff: float = 0.0,
        dmrg_ridge: float | None = 1.0,
    ) -> None:
        super().__init__()
        if num_sites < 2:
            raise ArchsmithError(f"mps: needs at least 2 sites, got {num_sites}")
        label_site = num_sites // 2 if label_site is None else label_site
        if not 0 <= label_site < num_sites:
            raise ArchsmithError(
                f"options.label_site: must be in [0, {num_sites - 1}], got {label_site}"
            )
        self.num_sites, self.num_classes, self.chi = num_sites, num_classes, chi
        self.label_site = label_site
        if feature_norm is None:
            # l1 makes the identity start exact; the kernel of unit (l2) features weighs every
            # sample alike, where l1 scales sample n by prod_j 1 / sum_s phi_s(x_nj)
            feature_norm = "l2" if init == "kernel" else "l1"
        self.feature_scale, self.feature_norm = feature_scale, feature_norm
        self.local_dim = local_dim
        perm = torch.arange(num_sites) if order is None else torch.as_tensor(list(order))
        if sorted(perm.tolist()) != list(range(num_sites)):
            raise ArchsmithError(f"mps: order must be a permutation of the {num_sites} sites")
        # site j reads input feature order[j]; not persistent: the spec's options rebuild it
        self.order: torch.Tensor
        self.register_buffer("order", perm, persistent=False)
        self.norm_penalty = norm_penalty
        if init not in ("identity", "kernel"):
            raise ArchsmithError(f"mps: init must be 'identity' or 'kernel', got {init!r}")
        self.init, self.kernel_ridge = init, kernel_ridge
        self.train_mode = train_mode
        self.dmrg_lr, self.dmrg_steps, self.dmrg_cutoff = dmrg_lr, dmrg_steps, dmrg_cutoff
        self.dmrg_ridge = dmrg_ridge
        d = local_dim
        cores = []
        for j in range(num_sites):
            left = 1 if j == 0 else chi
            right = 1 if j == num_sites - 1 else chi
            eye = torch.eye(left, right)  # the boundary rows/columns pick bond value 0
            if j == label_site:
                core = eye[:, None, None, :].expand(left, d, num_classes, right).clone()
            else:
                core = eye[:, None, :].expand(left, d, right).clone()
            cores.append(nn.Parameter(core + init_std * torch.randn_like(core)))
        self.cores = nn.ParameterList(cores)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, *] -> phi: [B, N, d]``."""
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.num_sites:
            raise ArchsmithError(
                f"mps: input has {flat.shape[1]} features per sample, model has "
                f"{self.num_sites} sites"
            )
        return local_feature_map(
            flat[:, self.order], self.feature_scale, self.feature_norm, self.local_dim
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mps_logits(list(self.cores), self.features(x), self.label_site)

    def on_fit_start(self, task: Task) -> None:
        """Called by :func:`archsmith.train.fit` before a fresh run: with ``init="kernel"``, the
        kernel ridge initialisation on the task's training set."""
        if self.init == "kernel":
            fit_kernel_ridge(self, task.train.x, task.train.y, ridge=self.kernel_ridge)

    def mean_square_weight(self) -> torch.Tensor:
        """``||W||^2 / d^N`` (a scalar), see :func:`~._chain.mean_square_weight`."""
        return mean_square_weight(list(self.cores), self.label_site)

    def training_loss(self, x: torch.Tensor, y: torch.Tensor, task_loss: LossFn) -> torch.Tensor:
        """The trainer's objective for one batch (see :func:`archsmith.layers.aux_loss`).

        In ``"dmrg"`` mode the batch drives one sweep that updates the sites in place; the
        returned loss (after the sweep) then carries no gradient to any parameter, so the
        trainer's optimizer leaves them alone.
        """
        if self.train_mode == "gd":
            loss = task_loss(self(x), y)
            if self.norm_penalty:
                loss = loss + self.norm_penalty * self.mean_square_weight()
            return loss
        swept = dmrg_sweep(
            self,
            x,
            y,
            task_loss,
            lr=self.dmrg_lr,
            steps=self.dmrg_steps,
            cutoff=self.dmrg_cutoff,
            ridge=self.dmrg_ridge,
        )
        # a leaf outside the model: backward() works and every parameter's grad stays None
        return torch.tensor(swept) + torch.zeros((), requires_grad=True)

    def extra_repr(self) -> str:
        return (
            f"sites={self.num_sites}, classes={self.num_classes}, chi={self.chi}, "
            f"label_site={self.label_site}, init={self.init!r}, train_mode={self.train_mode!r}"
        )


def pixel_path(in_shape: tuple[int, ...], kind: str) -> list[int]:
    """The input features in chain order, as indices into the row-major flattened input.

    Args:
        in_shape: ``[C, H, W]`` images (``C = 1``) or ``[N]`` vectors (a ``1 x N`` grid, whose
            only path is the identity).
        kind: ``"row"``: row-major (the paper); ``"snake"``: row-major with every other row
            reversed (boustrophedon), so consecutive sites are always neighbouring pixels;
            ``"column"``: column-major.
    """
    h, w = (in_shape[-2], in_shape[-1]) if len(in_shape) >= 2 else (1, in_shape[0])
    grid = torch.arange(math.prod(in_shape)).reshape(-1, h, w)
    if kind == "column":
        grid = grid.transpose(1, 2)
    if kind == "snake":
        grid[:, 1::2] = grid[:, 1::2].flip(-1)
    return grid.flatten().tolist()


@register_model(
    "mps",
    default_task="digits",
    inputs=("image", "vector"),
    task_kinds=("classification",),
    family="tensornet",
    recipe=Recipe(
        lr=1e-4,
        epochs=10,
        options={"init": "kernel", "chi": 32, "feature_scale": 0.6},
        note="The kernel-ridge start is the classifier (digits: 0.98 before any step); gentle "
        "steps keep it, the trainer's 3e-3 can overfit the training set it already fits. chi "
        "and feature_scale chosen on validation. The small step is for this start: from "
        "init=identity give --lr 3e-3 --epochs 30 (or --no-recipe).",
    ),
)
def mps(
    in_shape: tuple[int, ...],
    num_outputs: int,
    chi: Annotated[int, Range(min=1)] = 10,
    label_site: Annotated[int, Range(min=0)] | None = None,
    feature_scale: Annotated[float, Range(min=0.0, min_inclusive=False)] = 1.0,
    feature_norm: Literal["l2", "l1"] | None = None,
    local_dim: Annotated[int, Range(min=2)] = LOCAL_DIM,
    pixel_order: Literal["row", "snake", "column"] = "row",
    init_std: Annotated[float, Range(min=0.0)] = 1e-2,
    norm_penalty: Annotated[float, Range(min=0.0)] = 0.0,
    init: Literal["identity", "kernel"] = "identity",
    kernel_ridge: Annotated[float, Range(min=0.0, min_inclusive=False)] = 1e-2,
    train_mode: Literal["gd", "dmrg"] = "gd",
    dmrg_lr: Annotated[float, Range(min=0.0, min_inclusive=False)] = 1.0,
    dmrg_steps: Annotated[int, Range(min=1)] = 2,
    dmrg_cutoff: Annotated[float, Range(min=0.0, max=1.0)] = 0.0,
    dmrg_ridge: Annotated[float, Range(min=0.0, min_inclusive=False)] | None = 1.0,
) -> nn.Module:
    """MPS classifier with a cos/sin feature map (Stoudenmire & Schwab 2016). ``feature_norm``
    defaults to ``"l1"`` (exact identity initialisation), or ``"l2"`` with ``init="kernel"`` (the
    kernel of unit features weighs every sample alike)."""
    return MPSClassifier(
        math.prod(in_shape),
        num_outputs,
        chi,
        label_site=label_site,
        feature_scale=feature_scale,
        feature_norm=feature_norm,
        local_dim=local_dim,
        order=pixel_path(in_shape, pixel_order),
        init_std=init_std,
        norm_penalty=norm_penalty,
        init=init,
        kernel_ridge=kernel_ridge,
        train_mode=train_mode,
        dmrg_lr=dmrg_lr,
        dmrg_steps=dmrg_steps,
        dmrg_cutoff=dmrg_cutoff,
        dmrg_ridge=dmrg_ridge,
    )
