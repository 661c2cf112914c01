"""archsmith.cost: hand-computed parameters, FLOPs and saved bytes; measure changes nothing."""

from __future__ import annotations

import json

import pytest
import torch
from torch import Tensor, nn

from archsmith import cost as cost_mod
from archsmith.cost import Cost, format_cost_table, human_bytes, human_count, measure
from archsmith.errors import ArchsmithError

B, IN, HID, OUT = 4, 5, 7, 3
F32 = 4  # bytes


def _measure(model: nn.Module, batch: Tensor | tuple[Tensor, ...], **kw: object) -> Cost:
    kw.setdefault("timing", False)
    return measure(model, batch, **kw)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# counts by hand


def test_linear_params_flops_saved_bytes() -> None:
    c = _measure(nn.Linear(IN, OUT), torch.randn(B, IN))
    assert c.batch_size == B
    assert c.params == c.trainable_params == IN * OUT + OUT
    assert c.param_bytes == (IN * OUT + OUT) * F32
    assert c.buffer_bytes == 0
    assert c.forward_flops == 2 * B * IN * OUT
    # backward: only grad of the weight (x does not require grad), one more matmul
    assert c.train_step_flops == 2 * 2 * B * IN * OUT
    # addmm saves x for the weight's grad; the weight is a parameter and not counted
    assert c.saved_activation_bytes == B * IN * F32
    assert c.saved_tensors == 1
    assert c.saved_tensors_skipped == 0


def test_mlp_stack_by_hand() -> None:
    model = nn.Sequential(nn.Linear(IN, HID), nn.ReLU(), nn.Linear(HID, OUT))
    c = _measure(model, torch.randn(B, IN))
    assert c.params == IN * HID + HID + HID * OUT + OUT
    fwd = 2 * B * IN * HID + 2 * B * HID * OUT
    assert c.forward_flops == fwd
    # backward: layer 2 grad of weight and of input, layer 1 grad of weight only
    assert c.train_step_flops == fwd + 2 * B * HID * OUT * 2 + 2 * B * IN * HID
    # saved: x [B, IN] by addmm 1; relu output h [B, HID], saved by ReLU *and* by addmm 2,
    # counted once; the weights are parameters
    assert c.saved_activation_bytes == (B * IN + B * HID) * F32
    assert c.saved_tensors == 2


class _SaveTwice(torch.autograd.Function):
    """y = 2x, saving x twice (as two saved tensors): still one storage."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x, x)
        return x * 2

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad * 2


class _Square(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(IN))

    def forward(self, x: Tensor) -> Tensor:
        y = x * self.w  # saves x and w
        return _SaveTwice.apply(y * y)  # mul saves y twice; the Function saves y*y twice


def test_saved_activation_bytes_alone_by_hand_and_state_unchanged() -> None:
    mlp = nn.Sequential(nn.Linear(IN, HID), nn.ReLU(), nn.Linear(HID, OUT))
    # x [B, IN] (addmm 1) and the ReLU output [B, HID] (relu and addmm 2 share it)
    assert cost_mod.saved_activation_bytes(mlp, torch.randn(B, IN)) == (B * IN + B * HID) * F32
    # an eval-mode model is measured in train mode (dropout saves its mask), as measure does,
    # and left in eval mode without grads
    model = nn.Sequential(nn.Linear(IN, HID), nn.Dropout(0.5), nn.ReLU(), nn.Linear(HID, OUT))
    model.eval()
    x = torch.randn(B, IN)
    got = cost_mod.saved_activation_bytes(model, x)
    assert got > (B * IN + B * HID) * F32
    assert got == _measure(model, x).saved_activation_bytes
    assert not model.training and all(p.grad is None for p in model.parameters())


def test_tensor_saved_twice_counts_once() -> None:
    c = _measure(_Square(), torch.randn(B, IN))
    # x, y and y*y: three storages of [B, IN], each saved twice or with a parameter
    assert c.saved_tensors == 3
    assert c.saved_activation_bytes == 3 * B * IN * F32


def test_float64_doubles_bytes() -> None:
    c32 = _measure(nn.Linear(IN, OUT), torch.randn(B, IN))
    c64 = _measure(nn.Linear(IN, OUT).double(), torch.randn(B, IN, dtype=torch.float64))
    assert c64.saved_activation_bytes == 2 * c32.saved_activation_bytes
    assert c64.param_bytes == 2 * c32.param_bytes
    assert c64.forward_flops == c32.forward_flops


def test_shared_parameters_counted_once() -> None:
    shared = nn.Linear(IN, IN)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    c = _measure(model, torch.randn(B, IN))
    assert c.params == IN * IN + IN
    assert c.param_bytes == (IN * IN + IN) * F32


def test_frozen_parameters_not_trainable() -> None:
    model = nn.Sequential(nn.Linear(IN, HID), nn.Linear(HID, OUT))
    model[0].requires_grad_(False)
    c = _measure(model, torch.randn(B, IN))
    assert c.params == IN * HID + HID + HID * OUT + OUT
    assert c.trainable_params == HID * OUT + OUT


class _Sparse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x.detach().to_sparse())
        return x * 2

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad * 2


class _SavesSparse(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(IN, OUT)

    def forward(self, x: Tensor) -> Tensor:
        return _Sparse.apply(self.lin(x))


def test_tensor_without_storage_is_skipped_and_counted() -> None:
    c = _measure(_SavesSparse(), torch.randn(B, IN))
    assert c.saved_tensors_skipped == 1
    assert c.saved_activation_bytes == B * IN * F32  # x of the linear layer only
    assert "skipped" in dict(c.rows())["saved activations"]


class _SelfAttention(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.scaled_dot_product_attention(x, x, x)


def test_attention_flops() -> None:
    b, h, t, d = 2, 3, 5, 4
    c = _measure(_SelfAttention(), torch.randn(b, h, t, d, requires_grad=True))
    # q @ k^T [t, d] x [d, t] and p @ v [t, t] x [t, d], per batch and head; counted on CPU too
    assert c.forward_flops == 2 * (2 * b * h * t * t * d)


# ----------------------------------------------------------------------------------------------
# inputs, outputs, losses


class _TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(IN, OUT)
        self.b = nn.Linear(HID, OUT)

    def forward(self, x: Tensor, z: Tensor) -> dict[str, object]:
        return {"sum": self.a(x) + self.b(z), "parts": [self.a(x)], "n": torch.tensor(3)}


def test_tuple_input_and_dict_output() -> None:
    x, z = torch.randn(B, IN), torch.randn(B, HID)
    c = _measure(_TwoInputs(), (x, z))
    assert c.batch_size == B
    # a(x) twice, b(z) once
    assert c.forward_flops == 2 * (2 * B * IN * OUT) + 2 * B * HID * OUT
    # x and z are saved (x by both calls of a: one storage)
    assert c.saved_activation_bytes == (B * IN + B * HID) * F32


def test_loss_fn_and_target() -> None:
    calls: list[tuple[torch.Size, torch.Size]] = []

    def loss_fn(out: Tensor, y: Tensor) -> Tensor:
        calls.append((out.shape, y.shape))
        return nn.functional.cross_entropy(out, y)

    x, y = torch.randn(B, IN), torch.randint(0, OUT, (B,))
    c = _measure(nn.Linear(IN, OUT), x, target=y, loss_fn=loss_fn)
    assert calls and all(call == (torch.Size([B, OUT]), torch.Size([B])) for call in calls)
    # besides x: log_softmax saves its output [B, OUT]; nll_loss saves the target (int64 [B])
    # and its total weight (a float32 scalar)
    assert c.saved_activation_bytes == (B * IN + B * OUT) * F32 + B * 8 + F32
    assert c.saved_tensors == 4


def test_target_without_loss_fn_is_an_error() -> None:
    with pytest.raises(ArchsmithError, match="together"):
        _measure(nn.Linear(IN, OUT), torch.randn(B, IN), target=torch.zeros(B))


def test_integer_output_needs_a_loss() -> None:
    class Argmax(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return x.argmax(-1)

    with pytest.raises(ArchsmithError, match="loss_fn"):
        _measure(Argmax(), torch.randn(B, IN))


def test_bad_repeats() -> None:
    with pytest.raises(ArchsmithError, match="repeats"):
        measure(nn.Linear(IN, OUT), torch.randn(B, IN), repeats=0)


# ----------------------------------------------------------------------------------------------
# measure changes nothing


def test_model_state_unchanged() -> None:
    bn = nn.BatchNorm1d(HID)
    last = nn.Linear(HID, OUT)
    model = nn.Sequential(nn.Linear(IN, HID), bn, nn.Dropout(0.5), last)
    model.eval()
    bn.train()  # a mixed state must come back as it was
    model(torch.randn(B, IN)).sum().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    grad_values = {n: g.clone() for n, g in grads.items() if g is not None}
    last.bias.grad = None
    grads["3.bias"] = None
    assert bn.running_mean is not None and bn.running_var is not None
    assert bn.num_batches_tracked is not None
    stats = (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
    flags = [m.training for m in model.modules()]
    x = torch.randn(B, IN) * 10 + 3
    rng = torch.get_rng_state()

    measure(model, x, repeats=2, warmup=1)

    assert [m.training for m in model.modules()] == flags
    for n, p in model.named_parameters():
        assert p.grad is grads[n]
        if p.grad is not None:
            assert torch.equal(p.grad, grad_values[n])
    assert torch.equal(bn.running_mean, stats[0])
    assert torch.equal(bn.running_var, stats[1])
    assert torch.equal(bn.num_batches_tracked, stats[2])
    assert torch.equal(torch.get_rng_state(), rng)


def test_no_hooks_left() -> None:
    from torch.nn.modules import module as module_mod

    model = nn.Sequential(nn.Linear(IN, HID), nn.ReLU(), nn.Linear(HID, OUT))
    measure(model, torch.randn(B, IN), repeats=1, warmup=0)
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks
        assert not m._backward_hooks and not m._backward_pre_hooks
    assert not module_mod._global_forward_hooks
    assert not module_mod._global_forward_pre_hooks
    assert not module_mod._global_backward_hooks
    # no saved-tensor hooks remain: a fresh graph saves tensors normally
    x = torch.randn(3, requires_grad=True)
    (x * x).sum().backward()
    assert x.grad is not None and torch.equal(x.grad, 2 * x.detach())


# ----------------------------------------------------------------------------------------------
# timing and memory


def test_timing_fields() -> None:
    model, x = nn.Linear(IN, OUT), torch.randn(B, IN)
    timed = measure(model, x, repeats=3, warmup=1, timing=True)
    assert timed.forward_ms is not None and timed.forward_ms > 0
    assert timed.train_step_ms is not None and timed.train_step_ms > 0
    untimed = measure(model, x, timing=False)
    assert untimed.forward_ms is None and untimed.train_step_ms is None


class _BigTemp(nn.Module):
    """Allocates (and touches) a 200 MB temporary in every forward."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(IN, OUT)

    def forward(self, x: Tensor) -> Tensor:
        big = torch.ones(50_000_000)  # 200 MB, every page written
        return self.lin(x) * big[-1]


@pytest.mark.parametrize("method", ["vmhwm", "sampled"])
def test_rss(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if method == "sampled":
        monkeypatch.setattr(cost_mod, "_reset_hwm", lambda: False)
    elif not cost_mod._reset_hwm():
        pytest.skip(
            "this kernel cannot reset VmHWM (/proc/self/clear_refs); the sampled method is tested"
        )
    small = _measure(nn.Linear(IN, OUT), torch.randn(B, IN))
    assert small.rss_method == method
    assert small.peak_rss_bytes >= small.step_rss_bytes >= 0
    big = _measure(_BigTemp(), torch.randn(B, IN))
    assert big.rss_method == method
    assert big.peak_rss_bytes >= big.step_rss_bytes > 150 * 2**20


# ----------------------------------------------------------------------------------------------
# output


def test_as_dict_is_json_safe_and_complete() -> None:
    c = measure(nn.Linear(IN, OUT), torch.randn(B, IN), repeats=1, warmup=0)
    d = json.loads(json.dumps(c.as_dict()))
    assert d["params"] == IN * OUT + OUT
    assert d["rss_method"] in ("vmhwm", "sampled")
    assert set(d) == {f.name for f in Cost.__dataclass_fields__.values()}


def test_human_units() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(1023) == "1023 B"
    assert human_bytes(1536) == "1.50 KiB"
    assert human_bytes(3 * 2**20) == "3.00 MiB"
    assert human_bytes(200 * 2**30) == "200 GiB"
    assert human_count(448) == "448"
    assert human_count(1_234_567) == "1.23 M"
    assert human_count(2e12) == "2.00 T"


def test_format_cost_table() -> None:
    a = _measure(nn.Linear(IN, OUT), torch.randn(B, IN))
    b = _measure(nn.Linear(IN, HID), torch.randn(B, IN))
    one = format_cost_table(a, title="one model")
    assert "one model" in one and "forward FLOPs" in one and f"{IN * OUT + OUT:,}" in one
    assert "forward latency" in one and "\x1b[" not in one  # no colour codes
    both = format_cost_table({"small": a, "wide": b}, title="two")
    assert "small" in both and "wide" in both
    assert str(IN * OUT + OUT) in both and str(IN * HID + HID) in both
