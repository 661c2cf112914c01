"""The compression pipeline on a small archsmith model: every dense layer replaced, the budget
met, a full-rank compression reproduces the model, save/load round-trips outputs exactly."""

import json

import pytest
import torch
from safetensors import safe_open

from archsmith.build import create_model
from archsmith.errors import ArchsmithError
from archsmith.tasks import get_task
from archsmith.tensornet.compress.allocate import allocate_greedy, total_params
from archsmith.tensornet.compress.archsmith_model import TaskModelSubject
from archsmith.tensornet.compress.formats import get_format
from archsmith.tensornet.compress.heal import HealConfig
from archsmith.tensornet.compress.pipeline import (
    REPORT_FILE,
    CompressConfig,
    compress,
    output_dir,
)
from archsmith.tensornet.compress.saving import MANIFEST_FILE, WEIGHTS_FILE, load_compressed
from archsmith.tensornet.compress.sensitivity import input_grams, rank_curves
from archsmith.tensornet.compress.surgery import linear_layers, linear_params, set_submodule
from archsmith.tensornet.layers import TensorLinear
from helpers import rel_err


@pytest.fixture(scope="module")
def task():
    return get_task("digits-flat")


def _subject(task, seed=0):
    torch.manual_seed(seed)
    model = create_model("mlp", task=task, hidden=[48, 40])
    return TaskModelSubject(model, task, label="mlp", num_calibration=128)


@pytest.mark.parametrize("method", ["mpo", "tt", "btt", "tucker"])
@pytest.mark.parametrize("target", [0.3, 0.55])
def test_every_linear_is_replaced_and_the_target_met(task, method, target):
    subject = _subject(task)
    dense = {n: linear_params(m) for n, m in linear_layers(subject.model).items()}
    result = compress(subject, CompressConfig(method=method, target=target, latency_repeats=1))
    assert not linear_layers(subject.model)  # no nn.Linear left
    replaced = {n: subject.model.get_submodule(n) for n in dense}
    assert all(isinstance(m, TensorLinear) for m in replaced.values())
    kept = sum(sum(p.numel() for p in m.parameters()) for m in replaced.values())
    assert kept <= (1 - target) * sum(dense.values())
    assert result.rows[1]["linear_params"] == kept
    # nothing else changed: total = original total - dense + factored
    assert sum(p.numel() for p in subject.model.parameters()) == (
        sum(p.numel() for p in subject.teacher.parameters()) - sum(dense.values()) + kept
    )


@pytest.mark.parametrize("allocation", ["sensitivity", "activation", "weight"])
def test_allocation_meets_the_budget_and_beats_uniform(task, allocation):
    subject = _subject(task, seed=1)
    layers = linear_layers(subject.model)
    fmt = get_format("mpo")
    grams = input_grams(
        subject.model, layers, lambda: [subject.model(b) for b in subject.calibration_batches()]
    )
    curves = rank_curves(layers, fmt, allocation=allocation, keep=0.5, grams=grams)
    budget = int(0.5 * sum(linear_params(m) for m in layers.values()))
    ranks = allocate_greedy(curves, budget)
    assert total_params(curves, ranks) <= budget
    assert total_params(curves, ranks) >= 0.9 * budget  # the budget is spent, not wasted


@pytest.mark.parametrize("method", ["mpo", "tt", "btt", "tucker"])
def test_full_rank_compression_reproduces_the_model(task, method):
    subject = _subject(task, seed=2)
    model = subject.model
    layers = linear_layers(model)
    fmt = get_format(method)
    grams = input_grams(model, layers, lambda: [model(b) for b in subject.calibration_batches()])
    for name, layer in layers.items():
        for variant in fmt.variants(layer.in_features, layer.out_features):
            top = fmt.layer_class.max_rank(  # type: ignore[attr-defined]
                layer.in_features, layer.out_features, **dict(variant)
            )
            set_submodule(model, name, fmt.factor(layer, top, variant, grams[name]))
    assert not linear_layers(model)
    x = task.test.x[:100]
    with torch.no_grad():
        assert rel_err(model(x), subject.teacher(x)) < 1e-5


@pytest.mark.parametrize("method", ["mpo", "tucker"])
def test_save_then_load_round_trips_outputs_exactly(task, tmp_path, method):
    subject = _subject(task, seed=3)
    config = CompressConfig(method=method, target=0.5, heal=HealConfig(steps=3), latency_repeats=1)
    out = tmp_path / "compressed"
    with output_dir(out, force=False) as tmp:
        compress(subject, config, out_dir=tmp)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MANIFEST_FILE, WEIGHTS_FILE, REPORT_FILE, "spec.json"]
    )
    with safe_open(str(out / WEIGHTS_FILE), framework="pt") as f:  # a safetensors file
        assert set(f.keys()) == set(subject.model.state_dict())
    loaded = load_compressed(out)
    x = task.test.x[:64]
    with torch.no_grad():
        assert torch.equal(loaded(x), subject.model(x))
    report = json.loads((out / REPORT_FILE).read_text())
    assert [r["stage"] for r in report["rows"]] == ["original", "compressed", "healed (3 steps)"]
    assert report["rows"][1]["file_MB"] < report["rows"][0]["file_MB"]


def test_load_refuses_a_bad_manifest(tmp_path):
    with pytest.raises(ArchsmithError, match="not a compressed model"):
        load_compressed(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ArchsmithError, match="cannot read"):
        load_compressed(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({"archsmith_compress": 1, "source": {}}))
    with pytest.raises(ArchsmithError, match=r"malformed|unknown source"):
        load_compressed(tmp_path)


def test_a_failed_run_leaves_no_output(task, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(RuntimeError), output_dir(out, force=False):
        raise RuntimeError("boom")
    assert not out.exists() and not list(tmp_path.iterdir())
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ArchsmithError, match="not empty"), output_dir(tmp_path / "full", False):
        pass


def test_config_rejects_bad_targets():
    for bad in (0.0, 1.0, -0.2, 1.5):
        with pytest.raises(ArchsmithError, match="--target-params"):
            CompressConfig(method="mpo", target=bad)
    with pytest.raises(ArchsmithError, match="--heal-steps"):
        HealConfig(steps=-1)
