import json

import pytest
import torch

from archsmith.build import build, create_model
from archsmith.errors import ArchsmithError
from archsmith.spec import Spec, load_spec

CNN_BLOCKS = {
    "task": "digits",
    "blocks": [
        {"type": "conv", "out_channels": 8},
        {"type": "pool", "kind": "max", "size": 2},
        {"type": "flatten"},
        {"type": "linear", "out_features": 32},
        {"type": "act", "layer": "relu"},
    ],
}


def test_block_spec_builds_and_appends_head() -> None:
    model = build(CNN_BLOCKS)
    assert model(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
    assert type(model[-1]).__name__ == "Head"
    expected = (
        (1 * 8 * 9) + 2 * 8 + (8 * 4 * 4 * 32 + 32) + (32 * 10 + 10)
    )  # conv(no bias)+bn+fc+head
    assert sum(p.numel() for p in model.parameters()) == expected


def test_transformer_block_spec_on_tokens() -> None:
    spec = {
        "task": "mqar",
        "blocks": [
            {"type": "embed", "dim": 16},
            {"type": "transformer", "num_heads": 2},
            {"type": "norm", "layer": "rmsnorm"},
        ],
    }
    model = build(spec)
    x = torch.zeros(2, 64, dtype=torch.long)
    assert model(x).shape == (2, 64, 128)


def test_spec_json_roundtrip_rebuilds_same_architecture(tmp_path) -> None:
    spec = Spec.from_dict(CNN_BLOCKS)
    path = spec.save(tmp_path / "spec.json")
    again = load_spec(path)
    assert again.to_dict() == spec.to_dict()
    a, b = build(spec), build(again)
    assert [tuple(p.shape) for p in a.parameters()] == [tuple(p.shape) for p in b.parameters()]


def test_model_spec_equals_create_model() -> None:
    model = build({"task": "digits", "model": "cnn", "options": {"channels": [8, 16]}})
    ref = create_model("cnn", task="digits", channels=[8, 16])
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters())


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {
                "task": "digits",
                "blocks": [
                    {"type": "conv", "out_channels": 8},
                    {"type": "flatten"},
                    {"type": "act"},
                    {"type": "linear", "out_features": 0},
                ],
            },
            "blocks[3].out_features: must be >= 1, got 0",
        ),
        (
            {"task": "digits", "blocks": [{"type": "conv", "out_channels": 8, "kernal_size": 3}]},
            "blocks[0].kernal_size: unknown option (did you mean 'kernel_size'?)",
        ),
        (
            {"task": "digits", "blocks": [{"type": "convv", "out_channels": 8}]},
            "blocks[0].type: unknown block 'convv' (did you mean 'conv'",
        ),
        (
            {"task": "digits", "blocks": [{"out_channels": 8}]},
            "blocks[0].type: expected a block name",
        ),
        (
            {"task": "digits", "blocks": [{"type": "os.system"}]},
            "blocks[0].type: unknown block 'os.system'",
        ),
        ({"task": "digits", "blocks": [{"type": "__import__"}]}, "unknown block '__import__'"),
        ({"task": "digits", "blocks": []}, "blocks: expected a non-empty list"),
        (
            {"task": "digits", "model": "mlp", "blocks": [{"type": "flatten"}]},
            "exactly one of 'model' or 'blocks'",
        ),
        (
            {"task": "digits", "model": "mlp", "optoins": {}},
            "optoins: unknown spec field (did you mean 'options'",
        ),
        (
            {"task": "digits", "model": "mlp", "options": {"hidden": [64, -1]}},
            "options.hidden[1]: must be >= 1",
        ),
        ({"task": "digits", "model": "nope"}, "unknown model 'nope'"),
        (
            {"task": "digits", "blocks": [{"type": "transformer"}]},
            "blocks[0] (transformer): transformer needs a token sequence",
        ),
        (
            {"task": "digits-flat", "blocks": [{"type": "conv", "out_channels": 4}]},
            "blocks[0] (conv): conv needs an image input",
        ),
        ({"archsmith_spec": 7, "model": "mlp"}, "archsmith_spec: unsupported version 7"),
        ([1, 2], "spec: expected a JSON object"),
        ({"model": "mlp"}, "task: the spec names no task"),
    ],
)
def test_spec_errors_name_the_field(spec, message: str) -> None:
    with pytest.raises(ArchsmithError) as info:
        build(spec)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_spec_refuses_code_objects() -> None:
    spec = Spec(task="digits", model="mlp", options={"act_layer": torch.nn.ReLU})
    with pytest.raises(
        ArchsmithError, match=r"options\.act_layer: .* cannot be written to a JSON spec"
    ):
        spec.to_dict()


def test_load_spec_errors(tmp_path) -> None:
    with pytest.raises(ArchsmithError, match="cannot read spec"):
        load_spec(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"model": "mlp",,}')
    with pytest.raises(ArchsmithError, match=r"is not valid JSON: .* line 1 column"):
        load_spec(bad)
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"task": "digits", "model": "mlp"}))
    assert load_spec(ok).model == "mlp"
