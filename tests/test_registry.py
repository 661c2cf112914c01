import pytest
import torch
from torch import nn

from archsmith.build import create_model
from archsmith.errors import ArchsmithError
from archsmith.registry import get_layer, list_layers, list_models, register_layer


def test_list_models_has_baselines_and_filters() -> None:
    assert {"mlp", "cnn", "transformer", "cox_mlp"} <= set(list_models())
    matched = list_models("*cnn*")
    assert "cnn" in matched and "mlp" not in matched
    assert all("cnn" in name for name in matched)
    assert list_models("zzz*") == []


def test_unknown_model_suggests_close_match() -> None:
    with pytest.raises(ArchsmithError, match=r"unknown model 'mpl' \(did you mean 'mlp'"):
        create_model("mpl", task="digits")


def test_create_model_passes_options_and_task_shape() -> None:
    model = create_model("mlp", task="digits-flat", hidden=[32])
    assert model(torch.zeros(5, 64)).shape == (5, 10)
    assert sum(p.numel() for p in model.parameters()) == 64 * 32 + 32 + 32 * 10 + 10
    assert model.archsmith_spec.to_dict() == {
        "archsmith_spec": 1,
        "task": "digits-flat",
        "model": "mlp",
        "options": {"hidden": [32]},
    }


def test_bad_option_value_names_field() -> None:
    with pytest.raises(ArchsmithError, match=r"options\.hidden\[0\]: must be >= 1"):
        create_model("mlp", task="digits", hidden=[0])


def test_incompatible_task_is_one_line() -> None:
    with pytest.raises(
        ArchsmithError, match="takes image inputs, but task 'digits-flat' gives vector"
    ):
        create_model("cnn", task="digits-flat")
    with pytest.raises(ArchsmithError, match="is survival"):
        create_model("mlp", task="breast-cancer-survival")


def test_layer_registries_resolve_names_classes_and_none() -> None:
    assert {"layernorm", "rmsnorm", "batchnorm", "none"} <= set(list_layers("norm"))
    assert isinstance(get_layer("norm", None)(4), nn.Identity)
    assert get_layer("act", nn.Tanh) is nn.Tanh
    assert isinstance(get_layer("attn", "softmax")(8, 2, causal=True, dropout=0.0), nn.Module)
    with pytest.raises(ArchsmithError, match="did you mean 'gelu'"):
        get_layer("act", "gelo")
    with pytest.raises(ArchsmithError, match="unknown layer kind"):
        list_layers("normalization")


def test_registered_layer_plugs_into_every_block() -> None:
    calls = []

    @register_layer("linear", "test_counting_linear")
    def counting(in_features: int, out_features: int, bias: bool = True) -> nn.Module:
        calls.append((in_features, out_features))
        return nn.Linear(in_features, out_features, bias=bias)

    create_model("mlp", task="digits-flat", hidden=[16], linear_layer="test_counting_linear")
    create_model("transformer", task="mqar", dim=16, depth=1, linear_layer="test_counting_linear")
    assert (64, 16) in calls and (16, 64) in calls  # mlp hidden layer, transformer MLP expand
