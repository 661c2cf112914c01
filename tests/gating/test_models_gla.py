"""Registered GLA models: gla_lm (pure and hybrid), generation by prefill + step, vig, and
``attn_layer="gla"`` inside the baseline transformer model and the spec's transformer block."""

import pytest
import torch

from archsmith.build import build, create_model
from archsmith.errors import ArchsmithError
from archsmith.gating.layers import GatedLinearAttention, VisionGatedLinearAttention
from archsmith.gating.models import GLALanguageModel
from archsmith.layers import SoftmaxAttention
from archsmith.tasks import get_task
from helpers import rel_err


def _mqar():
    return get_task("mqar", seq_len=32, num_kv_pairs=4, num_examples=16)


def test_gla_lm_hybrid_pattern_places_softmax_layers() -> None:
    model = create_model("gla_lm", task=_mqar(), depth=4, pattern="gs", dim=16, num_heads=2)
    kinds = [type(block.attn) for block in model.blocks]
    assert kinds == [GatedLinearAttention, SoftmaxAttention] * 2
    x, _ = _mqar().example_batch(3)
    assert model(x).shape == (3, 32, 128)


def test_gla_lm_bad_pattern_raises() -> None:
    with pytest.raises(ArchsmithError, match=r"options\.pattern"):
        create_model("gla_lm", task=_mqar(), pattern="gx")


def test_gla_lm_is_causal_on_next_token_tasks() -> None:
    model = create_model("gla_lm", task=_mqar(), dim=16, num_heads=2, pattern="gs").eval()
    x, _ = _mqar().example_batch(2)
    changed = x.clone()
    changed[:, 20] = (changed[:, 20] + 1) % 128
    out, out2 = model(x), model(changed)
    assert torch.equal(out[:, :20], out2[:, :20])
    assert not torch.allclose(out[:, 20:], out2[:, 20:])


@pytest.mark.parametrize("short_conv", [0, 4])
def test_prefill_then_step_equals_forward(short_conv: int) -> None:
    model = create_model(
        "gla_lm", task=_mqar(), dim=16, num_heads=2, chunk_size=8, short_conv=short_conv
    ).double()
    model.eval()
    x, _ = _mqar().example_batch(2)
    full = model(x)
    logits, cache = model.prefill(x[:, :13])
    steps = [logits]
    for t in range(13, 32):
        out, cache = model.step(x[:, t], cache)
        steps.append(out.unsqueeze(1))
    assert rel_err(torch.cat(steps, 1), full) < 1e-12
    with pytest.raises(ArchsmithError, match="positions"):
        model.step(x[:, 0], cache)


def test_short_conv_reaches_every_gla_layer() -> None:
    model = create_model("gla_lm", task=_mqar(), pattern="gs", short_conv=3)
    assert isinstance(model, GLALanguageModel)
    convs = [b.attn.short_conv for b in model.blocks if isinstance(b.attn, GatedLinearAttention)]
    assert convs == [3]
    with pytest.raises(ArchsmithError, match="short_conv"):
        create_model("gla_lm", task=_mqar(), short_conv=-1)


def test_hybrid_cannot_decode() -> None:
    model = create_model("gla_lm", task=_mqar(), pattern="gs")
    assert isinstance(model, GLALanguageModel)
    with pytest.raises(ArchsmithError, match="GLA in every block"):
        model.prefill(torch.zeros(1, 4, dtype=torch.long))


def test_vig_on_digits_trains_one_step() -> None:
    task = get_task("digits")
    model = create_model("vig", task=task, dim=16, num_heads=2)
    assert all(isinstance(b.attn, VisionGatedLinearAttention) for b in model.blocks)
    x, y = task.example_batch(4)
    loss = task.loss(model(x), y)
    loss.backward()
    assert model(x).shape == (4, 10) and torch.isfinite(loss)
    with pytest.raises(ArchsmithError, match="patch_size"):
        create_model("vig", task=task, patch_size=3)


def test_transformer_model_takes_gla() -> None:
    model = create_model("transformer", task=_mqar(), attn_layer="gla", dim=16, num_heads=2)
    assert all(isinstance(b.attn, GatedLinearAttention) for b in model.blocks)
    assert all(b.attn.causal for b in model.blocks)
    x, _ = _mqar().example_batch(2)
    assert model(x).shape == (2, 32, 128)
    # a classification task gets the bidirectional layer
    digits = create_model("transformer", task="digits", attn_layer="gla", dim=16, num_heads=2)
    assert not any(b.attn.causal for b in digits.blocks)
    assert digits(get_task("digits").example_batch(2)[0]).shape == (2, 10)


def test_transformer_spec_block_takes_gla() -> None:
    spec = {
        "task": "mqar",
        "blocks": [
            {"type": "embed", "dim": 16},
            {"type": "transformer", "num_heads": 2, "attn_layer": "gla"},
        ],
    }
    model = build(spec)
    assert any(isinstance(m, GatedLinearAttention) for m in model.modules())
    assert model(torch.zeros(2, 64, dtype=torch.long)).shape == (2, 64, 128)


@pytest.mark.parametrize(
    ("task_name", "options", "per_position"),
    [
        ("mqar", {"seq_len": 32, "num_kv_pairs": 4, "num_examples": 16}, True),
        ("selective-copy", {"seq_len": 24, "num_tokens": 4, "num_examples": 16}, True),
        ("digits", {}, False),
    ],
)
@pytest.mark.parametrize("pattern", ["g", "gs"])
def test_gla_lm_trains_one_step_on_its_tasks(
    task_name: str, options: dict, per_position: bool, pattern: str
) -> None:
    task = get_task(task_name, **options)
    model = create_model("gla_lm", task=task, dim=16, num_heads=2, pattern=pattern)
    x, y = task.example_batch(4)
    out = model(x)
    expected = (4, x.shape[1], task.num_outputs) if per_position else (4, task.num_outputs)
    assert tuple(out.shape) == expected
    loss = task.loss(out, y)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    # next-token tasks get causal GLA; image classification the bidirectional layer
    gla = [b.attn for b in model.blocks if isinstance(b.attn, GatedLinearAttention)]
    assert gla and all(layer.causal == per_position for layer in gla)


def test_reversible_transformer_takes_gla() -> None:
    # the reversible engine recomputes each block from its outputs in backward: GLA must be
    # deterministic there, so the gradients equal those of the plain-autograd twin
    x, y = _mqar().example_batch(2)
    grads = []
    for reversible in (True, False):
        torch.manual_seed(0)
        kw = {"attn_layer": "gla", "dim": 16, "num_heads": 2, "reversible": reversible}
        model = create_model("rev_transformer", task=_mqar(), **kw).double()
        layers = [m for m in model.modules() if isinstance(m, GatedLinearAttention)]
        assert len(layers) == 2 and all(layer.causal for layer in layers)
        loss = _mqar().loss(model(x), y)
        loss.backward()
        assert torch.isfinite(loss)
        grads.append([p.grad for p in model.parameters()])
    assert all(g is not None and torch.isfinite(g).all() for g in grads[0])
    for a, b in zip(*grads, strict=True):
        assert rel_err(a, b) < 1e-8
