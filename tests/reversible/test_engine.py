"""The reversible engine against its plain-autograd twin (same module, ``reversible=False``).

The twin runs the couplings' forward under ordinary autograd, and the couplings' forward is
checked against the papers' equations in ``test_couplings.py``; so agreement here means the
memory-saving backward computes the true gradients, up to reconstruction error.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from archsmith.cost import measure
from archsmith.reversible import (
    AdditiveCoupling,
    AffineCoupling,
    Coupling,
    MultiSplitCoupling,
    ReversibleSequence,
    rev_mbconv,
    rev_transformer_layer,
    set_reversible,
)
from helpers import rel_err

TOL = {torch.float64: 1e-10, torch.float32: 1e-4}


def branch(c_in: int, c_out: int, p: float) -> nn.Module:
    """conv -> BatchNorm -> tanh -> dropout: statistics and randomness inside F."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.Tanh(),
        nn.Dropout(p),
    )


def additive(p: float) -> Coupling:
    return AdditiveCoupling(branch(2, 3, p), branch(3, 2, p))  # 5 channels: (3, 2)


def multisplit(p: float) -> Coupling:
    return MultiSplitCoupling([branch(3, 2, p), branch(3, 2, p), branch(4, 1, p)])  # (2, 2, 1)


def affine_pair(p: float) -> list[Coupling]:
    # the affine coupling changes x2 only: an additive one after it changes both halves
    return [AffineCoupling(branch(3, 4, p)), additive(p)]


#: name -> (couplings of one layer for dropout p, input shape)
KINDS: dict[str, tuple[Callable[[float], list[Coupling]], tuple[int, ...]]] = {
    "additive": (lambda p: [additive(p)], (4, 5, 3, 4)),
    "multisplit": (lambda p: [multisplit(p)], (4, 5, 3, 4)),
    "affine": (affine_pair, (4, 5, 3, 4)),
    "mbconv2d": (lambda p: [rev_mbconv(5, expand_ratio=2, dropout=p)], (4, 5, 3, 4)),
    "mbconv3d": (lambda p: [rev_mbconv(5, expand_ratio=2, dims=3, dropout=p)], (3, 5, 2, 3, 3)),
    "transformer": (
        lambda p: [rev_transformer_layer(6, num_heads=2, mlp_ratio=2, dropout=p)],
        (3, 5, 12),
    ),
}


def stack(kind: str, depth: int, p: float, dtype: torch.dtype) -> tuple[ReversibleSequence, Tensor]:
    make, shape = KINDS[kind]
    couplings = [c for _ in range(depth) for c in make(p)]
    seq = ReversibleSequence(couplings).to(dtype)
    _untie_norms(seq)
    return seq, torch.randn(shape, dtype=dtype)


def _untie_norms(module: nn.Module) -> None:
    """Random norm scales and shifts, as after training. At the initial (1, 0) a norm followed
    by ReLU and another norm is scale-invariant, so its scale's gradient is zero up to rounding
    and its relative error meaningless (float32 autograd itself is off by 1e-2 there)."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d | nn.BatchNorm3d | nn.LayerNorm) or (
                type(m).__name__ == "BatchNorm"
            ):
                m.weight.uniform_(0.5, 1.5)  # type: ignore[operator]
                m.bias.uniform_(-0.5, 0.5)  # type: ignore[operator]


def grads(
    seq: nn.Module, x: Tensor, weight: Tensor, seed: int = 7, x_grad: bool = True
) -> tuple[Tensor, Tensor | None, list[Tensor | None]]:
    """Output, input gradient and parameter gradients of ``sum(seq(x) * weight)``."""
    seq.zero_grad(set_to_none=True)
    leaf = x.clone().requires_grad_(x_grad)
    torch.manual_seed(seed)  # the same dropout masks for both runs
    out = seq(leaf)
    (out * weight).sum().backward()
    return out.detach(), leaf.grad, [p.grad for p in seq.parameters()]


def compare(seq: ReversibleSequence, x: Tensor, tol: float, x_grad: bool = True) -> None:
    weight = torch.randn_like(seq(x))
    set_reversible(seq, True)
    out, dx, dps = grads(seq, x, weight, x_grad=x_grad)
    set_reversible(seq, False)
    ref, ref_dx, ref_dps = grads(seq, x, weight, x_grad=x_grad)
    # the same computation on differently laid-out tensors: reductions may differ in the last bit
    assert rel_err(out, ref) < tol / 100
    if x_grad:
        assert dx is not None and ref_dx is not None
        assert rel_err(dx, ref_dx) < tol
    assert len(dps) == len(ref_dps) > 0
    for (name, p), got, want in zip(seq.named_parameters(), dps, ref_dps, strict=True):
        if not p.requires_grad:
            assert got is None and want is None, name
            continue
        assert got is not None and want is not None, name
        assert rel_err(got, want) < tol, name


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("depth", [1, 4, 16])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_gradients_match_twin(kind: str, depth: int, dtype: torch.dtype) -> None:
    torch.set_num_threads(1)
    seq, x = stack(kind, depth, p=0.2, dtype=dtype)
    compare(seq, x, TOL[dtype])


def test_dropout_masks_are_replayed() -> None:
    """Without replaying the random state the gradients are wrong: the test has teeth."""
    seq, x = stack("additive", 4, p=0.5, dtype=torch.float64)
    compare(seq, x, 1e-10)
    seq.preserve_rng_state = False
    weight = torch.randn_like(seq(x))
    _, dx, _ = grads(set_reversible(seq, True), x, weight)
    _, ref_dx, _ = grads(set_reversible(seq, False), x, weight)
    assert dx is not None and ref_dx is not None
    assert rel_err(dx, ref_dx) > 1e-3


def test_batchnorm_statistics_updated_once_per_step() -> None:
    seq, x = stack("mbconv2d", 3, p=0.0, dtype=torch.float64)
    twin = set_reversible(copy.deepcopy(seq), False)
    weight = torch.randn_like(seq(x))  # an extra update, made on seq only:
    twin.load_state_dict(seq.state_dict())  # start from the same statistics
    grads(seq, x, weight)
    grads(twin, x, weight)
    buffers = dict(seq.named_buffers())
    for name, ref in twin.named_buffers():
        assert torch.equal(buffers[name], ref), name
    tracked = [b for n, b in seq.named_buffers() if n.endswith("num_batches_tracked")]
    assert tracked and all(int(b) == 2 for b in tracked)  # the probe forward and one step


class Counter(nn.Module):
    """Counts its forward calls in a buffer (a module the engine knows nothing about)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(c_in, c_out)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1  # type: ignore[operator,assignment]
        return self.lin(x)


def test_other_buffers_restored_after_recompute() -> None:
    seq = ReversibleSequence([AdditiveCoupling(Counter(2, 2), Counter(2, 2), dim=-1)] * 3)
    x = torch.randn(3, 4, requires_grad=True)
    seq(x).sum().backward()
    assert all(int(b) == 3 for b in seq.buffers())  # one forward per use, none from backward


class OwnBatchNorm(nn.BatchNorm2d):
    """A BatchNorm with a forward of its own: the engine cannot switch its tracking off, so it
    recomputes on copies of the buffers (which the recomputed graph saves)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x)


@pytest.mark.parametrize("overlap", [False, True])
def test_buffered_module_saved_by_the_graph(overlap: bool) -> None:
    torch.manual_seed(0)

    def fn(c_in: int, c_out: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), OwnBatchNorm(c_out), nn.Tanh()
        )

    couplings = [AdditiveCoupling(fn(2, 3), fn(3, 2)) for _ in range(3)]
    seq = ReversibleSequence(couplings, overlap=overlap).double()
    twin = set_reversible(copy.deepcopy(seq), False)
    x = torch.randn(4, 5, 3, 3, dtype=torch.float64)
    weight = torch.randn_like(x)
    _, dx, dps = grads(seq, x, weight)
    _, ref_dx, ref_dps = grads(twin, x, weight)
    assert dx is not None and ref_dx is not None and rel_err(dx, ref_dx) < 1e-10
    for got, want in zip(dps, ref_dps, strict=True):
        assert got is not None and want is not None and rel_err(got, want) < 1e-10
    for (name, buf), ref in zip(seq.named_buffers(), twin.buffers(), strict=True):
        assert torch.equal(buf, ref), name  # one update per step, as in plain autograd


def test_shared_parameters_accumulate() -> None:
    f, g = branch(2, 3, 0.0).double(), branch(3, 2, 0.0).double()
    seq = ReversibleSequence([AdditiveCoupling(f, g) for _ in range(3)])  # the same F and G
    compare(seq, torch.randn(4, 5, 3, 3, dtype=torch.float64), 1e-10)


def test_input_without_grad_and_frozen_parameters() -> None:
    seq, x = stack("additive", 3, p=0.0, dtype=torch.float64)
    frozen = seq.couplings[1].f[0].weight  # type: ignore[index,union-attr]
    frozen.requires_grad_(False)
    compare(seq, x, 1e-10, x_grad=False)
    assert frozen.grad is None


@pytest.mark.parametrize("overlap", [False, True])
def test_parameter_frozen_between_forward_and_backward(overlap: bool) -> None:
    seq, x = stack("additive", 3, p=0.0, dtype=torch.float64)
    seq.overlap = overlap
    frozen = seq.couplings[1].f[0].weight  # type: ignore[index,union-attr]
    twin = set_reversible(copy.deepcopy(seq), False)
    twin_frozen = twin.couplings[1].f[0].weight  # type: ignore[index,union-attr]
    grads = []
    for module, weight in ((seq, frozen), (twin, twin_frozen)):
        leaf = x.clone().requires_grad_()
        loss = module(leaf).square().sum()
        weight.requires_grad_(False)  # after the forward, before the backward
        loss.backward()
        grads.append([leaf.grad] + [p.grad for p in module.parameters()])
    for got, want in zip(*grads, strict=True):
        assert (got is None) == (want is None)
        if got is not None and want is not None:
            assert rel_err(got, want) < 1e-10


def test_autograd_grad_and_no_grad_inference() -> None:
    seq, x = stack("mbconv2d", 2, p=0.0, dtype=torch.float64)
    leaf = x.clone().requires_grad_()
    (dx,) = torch.autograd.grad(seq(leaf).square().sum(), leaf)  # not only .backward()
    twin_leaf = x.clone().requires_grad_()
    (ref,) = torch.autograd.grad(set_reversible(seq, False)(twin_leaf).square().sum(), twin_leaf)
    assert rel_err(dx, ref) < 1e-10
    set_reversible(seq, True).eval()
    with torch.no_grad():
        y = seq(x)
    assert y.grad_fn is None
    assert rel_err(seq.inverse(y), x) < 1e-12


def test_gradcheck_float64() -> None:
    seq, x = stack("affine", 2, p=0.0, dtype=torch.float64)
    seq.eval()  # BatchNorm on running statistics: a fixed function of x for gradcheck
    assert torch.autograd.gradcheck(seq, (x.requires_grad_(),), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["mbconv2d", "transformer"])
def test_inverse_recovers_input_float32(kind: str) -> None:
    seq, x = stack(kind, 16, p=0.1, dtype=torch.float32)
    seq.eval()
    with torch.no_grad():
        assert rel_err(seq.inverse(seq(x)), x) < 1e-5


class Shift(Coupling):
    """A coupling without a fused backward: ``y = x + tanh(net(x))`` on half the channels
    and dropout inside; the engine falls back to invert-then-recompute."""

    def __init__(self) -> None:
        super().__init__(dim=-1)
        self.net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.3), nn.Tanh())

    def forward(self, x: Tensor) -> Tensor:
        a, b = x[..., :2], x[..., 2:]
        return torch.cat([a, b + self.call(0, self.net, a)], -1)

    def inverse(self, y: Tensor) -> Tensor:
        a, b = y[..., :2], y[..., 2:]
        return torch.cat([a, b - self.call(0, self.net, a)], -1)


def test_generic_coupling_uses_invert_then_recompute() -> None:
    layers: list[Coupling] = []
    for _ in range(4):
        layers += [Shift(), AdditiveCoupling(nn.Linear(2, 2), nn.Linear(2, 2), dim=-1)]
    compare(ReversibleSequence(layers).double(), torch.randn(5, 4, dtype=torch.float64), 1e-10)


def test_saved_bytes_flat_in_depth_while_twin_grows() -> None:
    def saved(depth: int, reversible: bool) -> int:
        torch.manual_seed(0)
        seq = ReversibleSequence([rev_mbconv(8) for _ in range(depth)], reversible=reversible)
        return measure(seq, torch.randn(4, 8, 6, 6), timing=False).saved_activation_bytes

    rev_2, rev_8 = saved(2, True), saved(8, True)
    plain_2, plain_8 = saved(2, False), saved(8, False)
    assert rev_8 == rev_2 == 4 * 8 * 6 * 6 * 4  # the output alone, float32
    assert plain_8 > 3.5 * plain_2


@pytest.mark.parametrize("kind", ["additive", "multisplit", "mbconv2d", "transformer"])
def test_pareprop_overlap_matches_twin(kind: str) -> None:
    seq, x = stack(kind, 4, p=0.2, dtype=torch.float64)
    seq.overlap = True
    compare(seq, x, 1e-10)
    compare(seq, x, 1e-10, x_grad=False)


class PlusParam(nn.Module):
    """``x + p`` with ``p`` of the part's full shape: autograd hands ``p`` the incoming
    gradient itself, which the in-place backward must not overwrite afterwards."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.randn(shape))

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(x) + self.p


@pytest.mark.parametrize("overlap", [False, True])
def test_pass_through_parameter_gradient_is_not_overwritten(overlap: bool) -> None:
    layers = [AdditiveCoupling(PlusParam((3, 2)), PlusParam((3, 2)), dim=-1) for _ in range(3)]
    seq = ReversibleSequence(layers, overlap=overlap).double()
    compare(seq, torch.randn(3, 4, dtype=torch.float64), 1e-10)


class Hooked(AdditiveCoupling):
    """A coupling that counts its own forward calls through a forward hook."""

    def __init__(self) -> None:
        super().__init__(nn.Linear(2, 2), nn.Linear(2, 2), dim=-1)
        self.calls = 0
        self.register_forward_hook(lambda *_: setattr(self, "calls", self.calls + 1))


def test_general_path_for_hooks_and_unlike_splits() -> None:
    """Blocks the contiguous-parts path cannot run (a coupling's own hooks, splits that differ
    between blocks) take the per-block path, and still match the twin."""
    hooked = Hooked()
    layers: list[Coupling] = [AdditiveCoupling(nn.Linear(2, 2), nn.Linear(2, 2), dim=-1), hooked]
    compare(ReversibleSequence(layers).double(), torch.randn(5, 4, dtype=torch.float64), 1e-10)
    assert hooked.calls > 0
    unlike = [
        AdditiveCoupling(nn.Linear(2, 3), nn.Linear(3, 2), dim=-1),
        AdditiveCoupling(nn.Linear(1, 4), nn.Linear(4, 1), dim=-1, split=4),
    ]
    compare(ReversibleSequence(unlike).double(), torch.randn(5, 5, dtype=torch.float64), 1e-10)


def test_overlap_keeps_flop_count_under_a_dispatch_mode() -> None:
    """FLOP counting sees one thread: under it the overlapped backward runs sequentially."""

    def flops(overlap: bool) -> int:
        torch.manual_seed(0)
        seq = ReversibleSequence([rev_mbconv(4) for _ in range(3)], overlap=overlap)
        return measure(seq, torch.randn(2, 4, 5, 5), timing=False).train_step_flops

    assert flops(True) == flops(False) > 0
