"""Candidate sets come from the registries at call time: a layer registered later joins the
default spaces, one that does not work in a block stays out, and probing leaves the trial's
random state alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import torch
from torch import nn

from archsmith import registry
from archsmith.errors import ArchsmithError
from archsmith.registry import register_layer
from archsmith.search.spaces import choices, default_space, rebuild, vector_space
from archsmith.search.spaces.image import max_stages
from archsmith.search.spaces.vector import WIDTHS
from archsmith.tasks import get_task


class ScaleNorm(nn.Module):
    """``x / rms(x)`` over the last dimension: a norm for vectors and tokens, not maps."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gain * x * x.pow(2).mean(-1, keepdim=True).add(1e-6).rsqrt()


class Collapse(nn.Module):
    """A "norm" that forgets its input: every sample becomes zero."""

    def __init__(self, num_features: int) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0.0


@pytest.fixture
def temporary_layers() -> Iterator[list[tuple[str, str]]]:
    """Layers a test registers (``kind, name`` appended to the list), removed afterwards."""
    added: list[tuple[str, str]] = []
    yield added
    for kind, name in added:
        registry._LAYERS[kind].pop(name, None)


def register(added: list[tuple[str, str]], kind: str, name: str, factory: type) -> None:
    register_layer(kind, name)(factory)
    added.append((kind, name))


def mlp_params(norm: str) -> dict[str, object]:
    return {"model": "mlp", "width": 32, "depth": 2, "norm": norm, "act": "relu", "linear": "dense"}


def test_a_norm_registered_later_becomes_a_choice_of_the_vector_space(
    temporary_layers: list[tuple[str, str]],
) -> None:
    task = get_task("digits-flat")
    assert "test_scale_norm" not in choices.norms("vector", WIDTHS)
    register(temporary_layers, "norm", "test_scale_norm", ScaleNorm)
    register(temporary_layers, "norm", "test_collapse", Collapse)
    # a live trial declares it among the norm choices ...
    study = optuna.create_study()
    study.enqueue_trial({"model": "mlp"})
    trial = study.ask()
    vector_space(trial, task)
    norm_choices = trial.distributions["norm"].choices
    assert "test_scale_norm" in norm_choices and "test_collapse" not in norm_choices
    assert list(norm_choices) == sorted(norm_choices)
    # ... and a design that uses it rebuilds and trains
    spec = rebuild(default_space(task), mlp_params("test_scale_norm"), task)
    assert spec.options["norm_layer"] == "test_scale_norm"
    with pytest.raises(ArchsmithError, match="outside the space's choices"):
        rebuild(default_space(task), mlp_params("test_collapse"), task)
    # a last-dimension norm is no norm for channels-first feature maps
    assert "test_scale_norm" not in choices.norms("image", [8, 16], [2, 8])
    assert "test_scale_norm" in choices.norms("tokens", [32, 48])


def test_unregistering_removes_the_choice(temporary_layers: list[tuple[str, str]]) -> None:
    register(temporary_layers, "norm", "test_gone", ScaleNorm)
    assert "test_gone" in choices.norms("vector", WIDTHS)
    registry._LAYERS["norm"].pop("test_gone")
    assert "test_gone" not in choices.norms("vector", WIDTHS)


def test_norm_choices_follow_each_layout() -> None:
    vector = choices.norms("vector", WIDTHS)
    image = choices.norms("image", [8, 16, 32], [2, 4, 8])
    tokens = choices.norms("tokens", [32, 48, 64])
    assert {"batchnorm", "layernorm", "rmsnorm", "evonorm_b0", "none"} <= set(vector)
    # instance statistics of a single value: IBN raises, RN-B collapses to its shift
    assert not {"ibn", "regionnorm"} & set(vector)
    # layernorm/rmsnorm normalize the last dim (the map's width), not the channels
    assert {"batchnorm", "groupnorm", "layernorm2d", "evonorm_s0", "ibn"} <= set(image)
    assert not {"layernorm", "rmsnorm"} & set(image)
    assert {"layernorm", "rmsnorm", "none"} <= set(tokens)
    assert not {"batchnorm", "groupnorm", "evonorm_b0"} & set(tokens)
    assert all(list(c) == sorted(c) for c in (vector, image, tokens))


def test_group_norm_on_narrow_vectors_is_left_out_for_a_reason() -> None:
    """The reference: GroupNorm with one channel per group (16 features -> 16 groups) maps
    every [B, 16] vector to its shift, so a probe that admits it would admit a dead layer."""
    out = registry.get_layer("norm", "groupnorm")(16)(torch.randn(8, 16))
    assert out.abs().max() < 1e-4  # its shift (0) up to eps
    assert "groupnorm" not in choices.norms("vector", [16, 64])
    assert "groupnorm" in choices.norms("vector", [64])  # two channels per group: it works


def test_other_kinds_come_from_their_registries(temporary_layers: list[tuple[str, str]]) -> None:
    assert choices.linears([(13, 16), (16, 16), (64, 128)]) == sorted(
        registry.list_layers("linear")
    )
    assert choices.activations() == [a for a in registry.list_layers("act") if a != "none"]
    assert choices.attentions([(32, 4)]) == ["gla", "softmax"]
    assert choices.mlps([(32, 128)]) == ["dense", "moe"]

    def broken_linear(in_features: int, out_features: int, bias: bool = True) -> nn.Module:
        return nn.Linear(in_features, out_features + 1, bias=bias)  # the wrong output size

    register(temporary_layers, "linear", "test_broken", broken_linear)  # type: ignore[arg-type]
    assert "test_broken" not in choices.linears([(16, 16)])


def test_probing_leaves_the_random_state_alone(temporary_layers: list[tuple[str, str]]) -> None:
    class RandomInit(ScaleNorm):
        def __init__(self, num_features: int) -> None:
            super().__init__(num_features)
            nn.init.normal_(self.gain, 1.0, 0.1)  # draws from the global generator

    register(temporary_layers, "norm", "test_random_init", RandomInit)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    assert "test_random_init" in choices.norms("vector", [24, 40])  # a fresh probe
    assert torch.equal(torch.rand(3), expected)


def test_compatible_models_and_literals_read_the_registry(tmp_path: Path) -> None:
    path = tmp_path / "reg.csv"
    path.write_text("a,b,y\n" + "".join(f"{i},{i % 7},{i * 0.5}\n" for i in range(60)))
    regression = get_task(f"csv:{path}", target="y", kind="regression")
    assert choices.compatible_models(["early_exit_mlp", "mlp", "nope"], get_task("wine")) == [
        "early_exit_mlp",
        "mlp",
    ]
    assert choices.compatible_models(["early_exit_mlp", "mlp"], regression) == ["mlp"]
    assert choices.literal_choices("early_exit_mlp", "gate") == ["confidence", "joint"]


@pytest.mark.parametrize(
    ("side", "stages"), [(1, 1), (2, 1), (3, 1), (4, 2), (7, 2), (8, 3), (28, 3)]
)
def test_image_stages_keep_every_map_at_least_2x2(side: int, stages: int) -> None:
    class Input:
        kind = "image"
        shape = (1, side, side)

    class FakeTask:
        name = "fake"
        input = Input()

    assert max_stages(FakeTask()) == stages  # type: ignore[arg-type]
