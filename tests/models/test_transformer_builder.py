"""The one Transformer builder and the models registered over it.

Two kinds of test:

- a recorded fixture (``data/transformer_state_shapes.json``, written by the code before the
  builder was shared): for every registered Transformer-like model (``transformer``,
  ``rev_transformer``, ``gla_lm`` with every pattern, ``moe_transformer``, ``vig``) and the
  ``rev_transformer`` spec block inside a block list, at several option sets, the
  ``state_dict`` names and shapes (so old checkpoints still load), a seeded forward checksum
  (so the same seed still gives the same weights and the same outputs) and each factory's
  options (names, types, defaults);
- direct tests of the builder against independent references.

Regenerate the fixture only for an intended change of a model:
``PYTHONPATH=tests .venv/bin/python tests/models/test_transformer_builder.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import math
import typing
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from archsmith.build import build, create_model
from archsmith.errors import ArchsmithError
from archsmith.gating.layers import GatedLinearAttention
from archsmith.layers import SoftmaxAttention
from archsmith.models.transformer import Transformer, transformer_stack
from archsmith.registry import get_block, get_model_entry
from archsmith.reversible.blocks import ReversibleTransformer
from archsmith.tasks import Task, get_task
from archsmith.train import seed_everything
from helpers import rel_err

FIXTURE = Path(__file__).parent / "data" / "transformer_state_shapes.json"

MODELS = ("transformer", "rev_transformer", "gla_lm", "moe_transformer", "vig")
BLOCKS = ("embed", "transformer", "rev_transformer")

_TASKS: dict[str, tuple[str, dict[str, Any]]] = {
    "mqar": ("mqar", {"seq_len": 16, "num_kv_pairs": 2, "num_examples": 8}),
    "digits": ("digits", {}),
    "wine": ("wine", {}),
}

_SMALL = {"dim": 8, "num_heads": 2}

#: (case id, task key, registered model, options)
MODEL_CASES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("transformer-mqar", "mqar", "transformer", _SMALL),
    ("transformer-digits", "digits", "transformer", {**_SMALL, "depth": 3}),
    ("transformer-wine", "wine", "transformer", {**_SMALL, "depth": 1, "mlp_ratio": 1.5}),
    (
        "transformer-gla-moe",
        "mqar",
        "transformer",
        {**_SMALL, "depth": 1, "attn_layer": "gla", "mlp_layer": "moe", "norm_layer": "rmsnorm"},
    ),
    ("transformer-bidir-drop", "mqar", "transformer", {**_SMALL, "causal": False, "dropout": 0.1}),
    ("rev_transformer-mqar", "mqar", "rev_transformer", _SMALL),
    (
        "rev_transformer-plain",
        "mqar",
        "rev_transformer",
        {**_SMALL, "depth": 3, "reversible": False},
    ),
    ("rev_transformer-digits", "digits", "rev_transformer", _SMALL),
    (
        "rev_transformer-gla-moe",
        "mqar",
        "rev_transformer",
        {**_SMALL, "depth": 1, "attn_layer": "gla", "mlp_layer": "moe"},
    ),
    ("gla_lm-default", "mqar", "gla_lm", _SMALL),
    ("gla_lm-g", "mqar", "gla_lm", {**_SMALL, "pattern": "g", "short_conv": 0}),
    ("gla_lm-s", "mqar", "gla_lm", {**_SMALL, "pattern": "s"}),
    ("gla_lm-gs", "mqar", "gla_lm", {**_SMALL, "pattern": "gs", "depth": 4}),
    ("gla_lm-sg", "mqar", "gla_lm", {**_SMALL, "pattern": "sg", "depth": 3, "expand_k": 1.0}),
    ("gla_lm-moe", "mqar", "gla_lm", {**_SMALL, "pattern": "gs", "mlp_layer": "moe"}),
    ("gla_lm-digits", "digits", "gla_lm", {**_SMALL, "pattern": "gs", "short_conv": 3}),
    ("gla_lm-wine", "wine", "gla_lm", {**_SMALL, "depth": 1}),
    ("moe_transformer-mqar", "mqar", "moe_transformer", {**_SMALL, "num_experts": 3}),
    (
        "moe_transformer-dts",
        "digits",
        "moe_transformer",
        {**_SMALL, "depth": 1, "num_experts": 2, "top_k": 1, "router": "dts"},
    ),
    ("vig-digits", "digits", "vig", {**_SMALL, "depth": 2, "patch_size": 2}),
]

#: (case id, task key, spec blocks); a head is appended by the builder
SPEC_CASES: list[tuple[str, str, list[dict[str, Any]]]] = [
    (
        "spec-transformer",
        "mqar",
        [{"type": "embed", "dim": 8}, {"type": "transformer", "num_heads": 2, "attn_layer": "gla"}],
    ),
    (
        "spec-rev_transformer",
        "mqar",
        [
            {"type": "embed", "dim": 8},
            {"type": "rev_transformer", "num_heads": 2, "depth": 2},
            {"type": "transformer", "num_heads": 2},
        ],
    ),
    (
        "spec-rev_transformer-plain",
        "digits",
        [
            {"type": "embed", "dim": 8},
            {
                "type": "rev_transformer",
                "num_heads": 2,
                "depth": 1,
                "reversible": False,
                "mlp_layer": "moe",
            },
        ],
    ),
]

CASE_IDS = [c[0] for c in MODEL_CASES] + [c[0] for c in SPEC_CASES]


def _task(key: str) -> Task:
    name, options = _TASKS[key]
    return get_task(name, **options)


def _build_case(case_id: str) -> tuple[torch.nn.Module, torch.Tensor]:
    """The case's model built from seed 0, and a fixed batch of two of its task's inputs."""
    seed_everything(0)
    for cid, key, name, options in MODEL_CASES:
        if cid == case_id:
            task = _task(key)
            return create_model(name, task=task, **options), task.example_batch(2)[0]
    for cid, key, blocks in SPEC_CASES:
        if cid == case_id:
            task = _task(key)
            return build({"blocks": blocks}, task=task), task.example_batch(2)[0]
    raise KeyError(case_id)


def _state_shapes(model: torch.nn.Module) -> list[list[Any]]:
    return [[name, list(t.shape)] for name, t in model.state_dict().items()]


@torch.no_grad()
def _checksum(model: torch.nn.Module, x: torch.Tensor) -> list[float]:
    """``[sum, l2 norm]`` of the eval-mode output in float64: small, and moves with any weight."""
    out = model.eval()(x).double()
    return [float(out.sum()), float(out.norm())]


def _type_text(tp: Any) -> str:
    """``tp`` as text, its constraints' numbers as floats: ``typing`` caches ``Annotated`` types
    by equality, so ``Range(min=0)`` and ``Range(min=0.0)`` (equal) print as whichever module
    made theirs first, and plain ``repr`` would depend on the import order."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) is typing.Annotated:
        base, *meta = args
        return f"Annotated[{_type_text(base)}, {', '.join(_meta_text(m) for m in meta)}]"
    if not args:
        return repr(tp)
    return f"{typing.get_origin(tp)!r}[{', '.join(_type_text(a) for a in args)}]"


def _meta_text(meta: Any) -> str:
    if not dataclasses.is_dataclass(meta):
        return repr(meta)
    values = {f.name: getattr(meta, f.name) for f in dataclasses.fields(meta)}
    floats = {k: float(v) if type(v) is int else v for k, v in values.items()}
    return f"{type(meta).__name__}({floats})"


def _signature(fn: typing.Callable[..., Any]) -> list[list[str]]:
    """Each parameter's name, resolved type (constraints included) and default, as text."""
    hints = typing.get_type_hints(fn, include_extras=True)
    return [
        [p.name, _type_text(hints.get(p.name)), repr(p.default)]
        for p in inspect.signature(fn).parameters.values()
    ]


def _entry(name: str) -> dict[str, Any]:
    e = get_model_entry(name)
    return {
        "default_task": e.default_task,
        "inputs": list(e.inputs),
        "task_kinds": list(e.task_kinds),
        "family": e.family,
        "description": e.description,
        "signature": _signature(e.factory),
    }


def _record() -> dict[str, Any]:
    cases = {}
    for case_id in CASE_IDS:
        model, x = _build_case(case_id)
        cases[case_id] = {
            "class": type(model).__name__,
            "state": _state_shapes(model),
            "checksum": _checksum(model, x),
        }
    return {
        "models": {name: _entry(name) for name in MODELS},
        "blocks": {name: _signature(get_block(name)) for name in BLOCKS},
        "cases": cases,
    }


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_state_names_shapes_and_outputs_are_as_recorded(
    case_id: str, recorded: dict[str, Any]
) -> None:
    expected = recorded["cases"][case_id]
    model, x = _build_case(case_id)
    assert type(model).__name__ == expected["class"]
    assert _state_shapes(model) == expected["state"]
    for got, want in zip(_checksum(model, x), expected["checksum"], strict=True):
        assert math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-6), (got, want)


@pytest.mark.parametrize("name", MODELS)
def test_model_options_are_as_recorded(name: str, recorded: dict[str, Any]) -> None:
    assert _entry(name) == recorded["models"][name]


@pytest.mark.parametrize("name", BLOCKS)
def test_block_options_are_as_recorded(name: str, recorded: dict[str, Any]) -> None:
    assert _signature(get_block(name)) == recorded["blocks"][name]


def test_fixture_covers_every_case(recorded: dict[str, Any]) -> None:
    assert sorted(recorded["cases"]) == sorted(CASE_IDS)


# ----------------------------------------------------------------------------------------------
# the builder itself

_T, _VOCAB, _K = 7, 11, 5


def _tokens() -> torch.Tensor:
    return torch.randint(0, _VOCAB, (3, _T), generator=torch.Generator().manual_seed(3))


def _builder(**options: Any) -> Transformer:
    seed_everything(0)
    kw: dict[str, Any] = {"vocab_size": _VOCAB, "dim": 8, "num_heads": 2, "mlp_ratio": 2.0}
    return Transformer((_T,), _K, **{**kw, **options}).double()


def _untie(model: nn.Module) -> None:
    """Random LayerNorm scales and shifts (seeded), so that a wrong norm shows."""
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(
                    torch.rand(m.weight.shape, generator=gen, dtype=m.weight.dtype) + 0.5
                )
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen, dtype=m.bias.dtype) - 0.5)


@pytest.mark.parametrize("per_position", [False, True])
def test_plain_stack_matches_torch_encoder_layers(per_position: bool) -> None:
    """The default stack is PyTorch's own pre-norm encoder layer (``norm_first=True``): the
    same weights copied over give the same outputs, causal masking included."""
    model = _builder(per_position=per_position, depth=2).eval()
    _untie(model)
    layers = []
    for block in model.blocks.children():
        ref = nn.TransformerEncoderLayer(
            8, 2, 16, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        ).double()
        with torch.no_grad():
            ref.self_attn.in_proj_weight.copy_(block.attn.qkv.weight)  # [q; k; v] rows both
            ref.self_attn.in_proj_bias.copy_(block.attn.qkv.bias)
            ref.self_attn.out_proj.load_state_dict(block.attn.proj.state_dict())
            ref.linear1.load_state_dict(block.mlp.fc1.state_dict())
            ref.linear2.load_state_dict(block.mlp.fc2.state_dict())
            ref.norm1.load_state_dict(block.norm1.state_dict())
            ref.norm2.load_state_dict(block.norm2.state_dict())
        layers.append(ref.eval())
    x = _tokens()
    h = model.embed.embed.weight[x] + model.embed.pos  # [B, T, D]
    mask = nn.Transformer.generate_square_subsequent_mask(_T, dtype=h.dtype)
    for ref in layers:
        h = ref(h, src_mask=mask, is_causal=True) if per_position else ref(h)
    h = model.norm(h)
    expected = model.head(h if per_position else h.mean(dim=1))
    assert rel_err(model(x), expected) < 1e-12


def test_reversible_stack_is_the_two_stream_coupling_and_its_twin() -> None:
    """With the reversible stack passed in: ``y1 = x1 + F(x2)``, ``y2 = x2 + G(y1)`` per layer
    from ``x1 = x2 = embed(x)``, the streams averaged; ``reversible=False`` builds the same
    weights from the same seed and gives the same outputs and gradients."""
    x = _tokens()
    results = []
    for reversible in (True, False):
        stack = functools.partial(ReversibleTransformer, reversible=reversible)
        model = _builder(depth=3, stack_layer=stack)
        _untie(model)
        out = model(x)
        out.square().sum().backward()
        results.append((model, out, [p.grad for p in model.parameters()]))
    (model, out, grads), (twin, twin_out, twin_grads) = results
    state, twin_state = model.state_dict(), twin.state_dict()
    assert list(state) == list(twin_state)
    assert all(torch.equal(state[k], twin_state[k]) for k in state)
    with torch.no_grad():
        x1 = x2 = model.embed(x)
        for coupling in model.blocks.layers.couplings:
            x1 = x1 + coupling.f(x2)
            x2 = x2 + coupling.g(x1)
        expected = model.head(model.norm(0.5 * (x1 + x2)).mean(dim=1))
    assert rel_err(out, expected) < 1e-12
    assert rel_err(out, twin_out) < 1e-12
    for g, r in zip(grads, twin_grads, strict=True):
        assert g is not None and r is not None and rel_err(g, r) < 1e-10


def test_stack_layer_gets_the_options_and_its_output_feeds_the_head() -> None:
    calls = []

    def spy_stack(*args: Any, **kwargs: Any) -> nn.Module:
        calls.append((args, kwargs))
        return nn.Identity()

    model = _builder(per_position=True, depth=3, dropout=0.25, stack_layer=spy_stack).eval()
    assert calls == [
        (
            (8, 3, 2, 2.0),
            {
                "attn_layer": "softmax",
                "norm_layer": "layernorm",
                "act_layer": "gelu",
                "linear_layer": "dense",
                "mlp_layer": "dense",
                "causal": True,  # per_position decides when causal is None
                "dropout": 0.25,
            },
        )
    ]
    x = _tokens()
    assert torch.equal(model(x), model.head(model.norm(model.embed(x))))  # [B, T, K]


def test_one_attention_layer_per_block() -> None:
    gla = functools.partial(GatedLinearAttention, short_conv=4)
    model = _builder(depth=3, attn_layer=["softmax", gla, "softmax"])
    kinds = [type(b.attn) for b in model.blocks.children()]
    assert kinds == [SoftmaxAttention, GatedLinearAttention, SoftmaxAttention]
    with pytest.raises(ArchsmithError, match="2 attention layers for 3 blocks"):
        transformer_stack(8, 3, 2, attn_layer=["softmax", gla])


def test_gla_hybrid_is_the_builder_with_one_attention_type_per_block() -> None:
    task = _task("mqar")
    seed_everything(0)
    model = create_model("gla_lm", task=task, dim=8, num_heads=2, pattern="gs", depth=3)
    gla = functools.partial(GatedLinearAttention, short_conv=4)  # gla_lm's defaults
    seed_everything(0)
    ref = Transformer(
        task.input.shape,
        task.num_outputs,
        vocab_size=task.input.vocab_size,
        per_position=True,
        dim=8,
        num_heads=2,
        depth=3,
        attn_layer=[gla, "softmax", gla],
    )
    x = task.example_batch(2)[0]
    assert rel_err(model.eval()(x), ref.eval()(x)) == 0.0


def test_heads_must_divide_the_width() -> None:
    with pytest.raises(ArchsmithError, match=r"options\.num_heads: dim 10 is not divisible"):
        _builder(dim=10, num_heads=4)


if __name__ == "__main__":
    # one line per model, block and case: small, and a changed case shows as one changed line
    record = _record()
    sections = [
        f"{json.dumps(key)}: {{\n"
        + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in record[key].items())
        + "\n}"
        for key in ("models", "blocks", "cases")
    ]
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text("{\n" + ",\n".join(sections) + "\n}\n")
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes)")
