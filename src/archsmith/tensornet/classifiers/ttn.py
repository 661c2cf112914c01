"""Tree tensor network classifier, registered as ``ttn``.

Huggins, Patil, Mitchell, Whaley & Stoudenmire, "Towards Quantum Machine Learning with Tensor
Networks" (2019), and Grant et al., "Hierarchical quantum classifiers" (2018): a binary tree
whose leaves are the local features ``phi(x_p)`` of the pixels and whose nodes are order-3
tensors ``T[l, r, o]`` that merge two children into one bond of dimension at most ``chi``; the root
carries the label index, so

    f^l(x) = contraction of the tree with Phi(x) = phi(x_1) (x) ... (x) phi(x_N).

Pairing is 2D-aware: each level merges neighbouring pixels along the longer side of the current
grid (8x8 -> 8x4 -> 4x4 -> 4x2 -> 2x2 -> 2x1 -> 1x1), so every node sees a compact square or
rectangular patch, as in the papers' image classifiers. All nodes of one level are stacked in one
parameter and contracted by one batched einsum.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Literal

import torch
from torch import nn

from archsmith.errors import ArchsmithError
from archsmith.options import Range
from archsmith.registry import register_model
from archsmith.tensornet.classifiers._chain import rescale
from archsmith.tensornet.classifiers.feature_map import LOCAL_DIM, local_feature_map
from archsmith.tensornet.core.contract import contract

if TYPE_CHECKING:
    from archsmith.tasks import Task

__all__ = ["TTNClassifier", "fit_isometries", "tree_levels", "ttn"]


def tree_levels(height: int, width: int) -> list[tuple[int, int, int]]:
    """The merges of a 2D-aware binary tree over a ``height x width`` grid.

    Returns:
        one ``(axis, h, w)`` per level: the level merges neighbouring pairs along ``axis``
        (1: rows, i.e. vertically; 2: columns) of the ``h x w`` grid it receives.
    """
    for side in (height, width):
        if side < 1 or side & (side - 1):
            raise ArchsmithError(f"ttn: grid sides must be powers of two, got {height}x{width}")
    levels = []
    h, w = height, width
    while h * w > 1:
        axis = 2 if w >= h else 1
        levels.append((axis, h, w))
        h, w = (h, w // 2) if axis == 2 else (h // 2, w)
    return levels


def _pairs(grid: torch.Tensor, axis: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``grid: [B, h, w, D]`` -> the first and second members of neighbouring pairs along
    ``axis`` (2: columns, 1: rows), each ``[B, h, w / 2, D]`` or ``[B, h / 2, w, D]``."""
    if axis == 2:
        return grid[:, :, 0::2], grid[:, :, 1::2]
    return grid[:, 0::2], grid[:, 1::2]


class TTNClassifier(nn.Module):
    """A binary tree tensor network over a ``height x width`` grid of pixels.

    Args:
        height, width: the pixel grid (powers of two; a vector input is a ``1 x N`` grid).
        num_classes: ``C``, the dimension of the root's label index.
        chi: the largest inner bond dimension (a bond is never wider than the dimension of the
            patch it summarises, ``2^pixels``).
        feature_scale, feature_norm: the local feature map (see
            :func:`~archsmith.tensornet.classifiers.feature_map.local_feature_map`).
        init_std: standard deviation of the noise added to the initial nodes.
        init: ``"random"`` (the initialisation below) or ``"isometries"``: the trainer's
            :meth:`on_fit_start` sets the inner nodes from the training inputs with
            :func:`fit_isometries` before the first step.

    Node tensors of level ``k``: ``nodes[k]: [h_k, w_k, D_in, D_in, D_out]`` (one per merged
    pair). The tree counterpart of the MPS's identity initialisation: every inner node maps any
    pair of children to bond value 0 with weight 1 (``T[l, r, 0] = 1``) and the root sends it to
    every label, plus noise. With ``"l1"`` features (components summing to 1) each node then
    outputs ``(sum_l u_l)(sum_r v_r) = 1`` on bond 0 for any input, so the untrained network
    neither vanishes nor explodes and the noise alone tells the labels apart.

    Shapes: ``x: [B, 1, H, W]`` or ``[B, H * W]`` -> ``[B, C]``.
    """

    def __init__(
        self,
        height: int,
        width: int,
        num_classes: int,
        chi: int = 8,
        *,
        feature_scale: float = 1.0,
        feature_norm: Literal["l2", "l1"] = "l1",
        init_std: float = 1e-2,
        init: Literal["random", "isometries"] = "random",
    ) -> None:
        super().__init__()
        if init not in ("random", "isometries"):
            raise ArchsmithError(f"ttn: init must be 'random' or 'isometries', got {init!r}")
        self.height, self.width, self.num_classes, self.chi = height, width, num_classes, chi
        self.init = init
        self.feature_scale, self.feature_norm = feature_scale, feature_norm
        self.levels = tree_levels(height, width)
        nodes = []
        dim, patch = LOCAL_DIM, 1
        for k, (axis, h, w) in enumerate(self.levels):
            patch *= 2
            out = num_classes if k == len(self.levels) - 1 else min(chi, LOCAL_DIM**patch)
            shape = (h, w // 2, dim, dim, out) if axis == 2 else (h // 2, w, dim, dim, out)
            nodes.append(nn.Parameter(torch.randn(shape) / math.sqrt(out)))
            dim = out
        self.nodes = nn.ParameterList(nodes)
        self._calibrate()

    @torch.no_grad()
    def _calibrate(self, samples: int = 256) -> None:
        """Scale each level so that random inputs keep a median gain of 1 through it.

        Gaussian nodes keep the squared norm of a product of children in expectation, but the
        gains of the 63 nodes of an 8x8 tree multiply, and their log-normal product has a
        median far below its mean (about ``e^-10`` here): the untrained outputs would be tiny.
        Uniform random pixels set the scale instead (data-free, like LSUV initialisation).
        """
        grid = self._leaves(torch.rand(samples, self.height, self.width))
        for (axis, _, _), node in zip(self.levels, self.nodes, strict=True):
            first, second = _pairs(grid, axis)
            out = contract("bhwl,bhwr,hwlro->bhwo", first, second, node)
            gain = out.norm(dim=-1) / (first.norm(dim=-1) * second.norm(dim=-1))
            node.div_(gain.median(dim=0).values[..., None, None, None].clamp_min(1e-12))
            grid = out / out.norm(dim=-1, keepdim=True).clamp_min(1e-30)

    def _leaves(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, H, W] -> [B, H, W, d]``."""
        return local_feature_map(x, self.feature_scale, self.feature_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        if x[0].numel() != self.height * self.width:
            raise ArchsmithError(
                f"ttn: input has {x[0].numel()} features per sample, the tree has "
                f"{self.height}x{self.width} leaves"
            )
        grid = self._leaves(x.reshape(b, self.height, self.width))
        log_scale = grid.new_zeros(b)
        for (axis, _, _), node in zip(self.levels, self.nodes, strict=True):
            first, second = _pairs(grid, axis)
            grid = contract("bhwl,bhwr,hwlro->bhwo", first, second, node)
            # the tree is multilinear in every node: rescaling is exact (see _chain)
            grid, logs = rescale(grid, (3,))
            log_scale = log_scale + logs.sum((1, 2))
        return grid[:, 0, 0] * log_scale.exp()[:, None]

    def on_fit_start(self, task: Task) -> None:
        """Called by :func:`archsmith.train.fit` before a fresh run: with ``init="isometries"``,
        :func:`fit_isometries` on the task's training inputs (labels unused)."""
        if self.init == "isometries":
            fit_isometries(self, task.train.x)

    def extra_repr(self) -> str:
        return (
            f"grid={self.height}x{self.width}, classes={self.num_classes}, chi={self.chi}, "
            f"levels={len(self.levels)}, init={self.init!r}"
        )


@torch.no_grad()
def fit_isometries(model: TTNClassifier, x: torch.Tensor) -> None:
    """Set every inner node of ``model`` from data, without labels (Stoudenmire 2018, sec. III).

    Level by level from the leaves, a node becomes the top ``D_out`` eigenvectors of the
    reduced density matrix of its two children over the samples,
    ``rho = sum_n (l_n (x) r_n)(l_n (x) r_n)^T / n``: the isometry that keeps the most weight of
    the data's product states (a tree-structured PCA). The next level sees the children
    projected by it. The root, which carries the label, is left for supervised training; it is
    only rescaled so that the untrained logits on ``x`` have unit RMS.

    Args:
        x: ``[n, 1, H, W]`` or ``[n, H * W]`` training inputs.
    """
    grid = model._leaves(x.reshape(x.shape[0], model.height, model.width))
    for (axis, _, _), node in zip(model.levels[:-1], model.nodes[:-1], strict=True):
        first, second = _pairs(grid, axis)
        pair = torch.einsum("bhwl,bhwr->bhwlr", first, second).flatten(3)  # [n, h, w, D*D]
        rho = torch.einsum("bhwi,bhwj->hwij", pair, pair) / x.shape[0]
        top = torch.linalg.eigh(rho).eigenvectors.flip(-1)[..., : node.shape[-1]]
        node.copy_(top.reshape(node.shape))
        grid = torch.einsum("bhwi,hwio->bhwo", pair, top)
    # the root keeps its random directions, scaled so that the logits start with unit RMS
    first, second = _pairs(grid, model.levels[-1][0])
    root = model.nodes[-1]
    logits = contract("bhwl,bhwr,hwlro->bhwo", first, second, root)
    root.div_(logits.pow(2).mean().sqrt().clamp_min(1e-30))


@register_model(
    "ttn",
    default_task="digits",
    inputs=("image", "vector"),
    task_kinds=("classification",),
    family="tensornet",
)
def ttn(
    in_shape: tuple[int, ...],
    num_outputs: int,
    chi: Annotated[int, Range(min=1)] = 8,
    feature_scale: Annotated[float, Range(min=0.0, min_inclusive=False)] = 1.0,
    feature_norm: Literal["l2", "l1"] = "l1",
    init_std: Annotated[float, Range(min=0.0)] = 1e-2,
    init: Literal["random", "isometries"] = "random",
) -> nn.Module:
    """Tree tensor network classifier over the pixel grid (Huggins et al. 2019); ``init=
    "isometries"`` fits the inner nodes to the training inputs before training (Stoudenmire
    2018)."""
    if len(in_shape) == 3 and in_shape[0] == 1:
        height, width = in_shape[1], in_shape[2]
    elif len(in_shape) == 1:
        height, width = 1, in_shape[0]
    else:
        raise ArchsmithError(f"ttn: takes [1, H, W] images or [N] vectors, got {list(in_shape)}")
    return TTNClassifier(
        height,
        width,
        num_outputs,
        chi,
        feature_scale=feature_scale,
        feature_norm=feature_norm,
        init_std=init_std,
        init=init,
    )
