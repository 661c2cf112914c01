import json

import pytest
import torch

from archsmith.build import create_model
from archsmith.errors import ArchsmithError
from archsmith.tasks import get_task
from archsmith.train import EpochEnd, TrainConfig, evaluate, fit, seed_everything


def small_run(tmp_path, name: str, **config) -> tuple:
    seed_everything(0)
    task = get_task("digits-flat")
    model = create_model("mlp", task=task, hidden=[32], dropout=0.1)
    cfg = TrainConfig(epochs=4, batch_size=128, lr=1e-2, seed=3, **config)
    return model, task, cfg


def test_fit_learns_and_writes_run_dir(tmp_path) -> None:
    model, task, cfg = small_run(tmp_path, "a")
    result = fit(model, task, cfg, out_dir=tmp_path / "run", progress=False)
    assert result.test["accuracy"] > 0.85
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"model.safetensors", "spec.json", "metrics.json", "resume.safetensors"} <= files
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] == pytest.approx(result.test["accuracy"])
    assert set(metrics) >= {"val", "test"}
    # the model holds the best weights: evaluating it again reproduces the reported numbers
    assert evaluate(model, task, "val")["accuracy"] == pytest.approx(result.val["accuracy"])
    assert result.best_epoch == max(
        range(1, 5), key=lambda e: (result.history[e - 1]["val_accuracy"], -e)
    )


def test_same_seed_same_result(tmp_path) -> None:
    m1, task, cfg = small_run(tmp_path, "a")
    r1 = fit(m1, task, cfg, progress=False)
    m2, task, cfg = small_run(tmp_path, "b")
    r2 = fit(m2, task, cfg, progress=False)
    assert r1.history == r2.history
    for a, b in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.equal(a, b)


def test_resume_after_interruption_equals_uninterrupted(tmp_path) -> None:
    model, task, cfg = small_run(tmp_path, "full")
    full = fit(model, task, cfg, out_dir=tmp_path / "full", progress=False)

    def interrupt(end: EpochEnd) -> None:
        if end.epoch == 2:
            raise KeyboardInterrupt

    model_b, task, cfg = small_run(tmp_path, "cut")
    with pytest.raises(KeyboardInterrupt):
        fit(model_b, task, cfg, out_dir=tmp_path / "cut", progress=False, callbacks=[interrupt])
    assert not (tmp_path / "cut" / "metrics.json").exists()
    seed_everything(123)  # a different process state: everything must come from the checkpoint
    fresh = create_model("mlp", task=task, hidden=[32], dropout=0.1)
    resumed = fit(fresh, task, cfg, out_dir=tmp_path / "cut", resume=True, progress=False)
    assert resumed.history == full.history
    assert resumed.test == full.test
    for a, b in zip(fresh.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_early_stopping_stops_after_patience(tmp_path) -> None:
    model, task, _ = small_run(tmp_path, "es")
    # a learning rate this small cannot improve validation accuracy much, and patience 1 stops it
    # at the first epoch that does not beat the best so far
    cfg = TrainConfig(epochs=50, batch_size=256, lr=1e-7, patience=1, seed=0)
    result = fit(model, task, cfg, progress=False)
    assert result.stopped_early
    assert result.epochs_run < 50
    last = [h["val_accuracy"] for h in result.history]
    assert last[-1] <= max(last[:-1])


def test_resume_without_checkpoint_and_bad_config(tmp_path) -> None:
    model, task, cfg = small_run(tmp_path, "x")
    with pytest.raises(ArchsmithError, match="nothing to resume"):
        fit(model, task, cfg, out_dir=tmp_path / "empty", resume=True, progress=False)
    with pytest.raises(ArchsmithError, match="epochs: invalid value 0"):
        TrainConfig(epochs=0)


def test_divergence_is_reported(tmp_path) -> None:
    model, task, _ = small_run(tmp_path, "nan")
    with torch.no_grad():
        model.head.weight.fill_(float("nan"))
    with pytest.raises(ArchsmithError, match="training diverged: loss is nan"):
        fit(model, task, TrainConfig(epochs=1), progress=False)


def _snapshots(model: torch.nn.Module, into: list[dict[str, torch.Tensor]]):
    def record(end: EpochEnd) -> None:
        into.append({k: v.detach().clone() for k, v in model.state_dict().items()})

    return record


def test_swa_weights_are_the_mean_of_the_late_epochs(tmp_path) -> None:
    model, task, _ = small_run(tmp_path, "swa")
    cfg = TrainConfig(epochs=6, batch_size=128, lr=1e-2, seed=3, weights="swa", swa_start=0.5)
    seen: list[dict[str, torch.Tensor]] = []
    result = fit(
        model,
        task,
        cfg,
        out_dir=tmp_path / "swa",
        progress=False,
        callbacks=[_snapshots(model, seen)],
    )
    assert result.epochs_run == 6 and len(seen) == 6
    late = seen[3:]  # epochs 4, 5, 6 are after 0.5 * 6
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            expected = torch.stack([s[key].double() for s in late]).mean(0).float()
            assert torch.allclose(value, expected, atol=1e-6), key
    assert evaluate(model, task, "test")["accuracy"] == pytest.approx(result.test["accuracy"])
    # the run directory's model file holds the same average
    from archsmith.checkpoint import load_model

    again = create_model("mlp", task=task, hidden=[32], dropout=0.1)
    load_model(tmp_path / "swa" / "model.safetensors", again)
    for a, b in zip(again.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_last_weights_train_every_epoch_and_keep_the_last(tmp_path) -> None:
    model, task, _ = small_run(tmp_path, "last")
    cfg = TrainConfig(epochs=5, batch_size=256, lr=1e-7, patience=1, seed=0, weights="last")
    seen: list[dict[str, torch.Tensor]] = []
    result = fit(model, task, cfg, progress=False, callbacks=[_snapshots(model, seen)])
    assert not result.stopped_early and result.epochs_run == 5
    for key, value in model.state_dict().items():
        assert torch.equal(value, seen[-1][key])


def test_swa_resume_equals_uninterrupted(tmp_path) -> None:
    cfg = TrainConfig(epochs=6, batch_size=128, lr=1e-2, seed=3, weights="swa", swa_start=0.3)
    model, task, _ = small_run(tmp_path, "full")
    full = fit(model, task, cfg, out_dir=tmp_path / "full", progress=False)

    def interrupt(end: EpochEnd) -> None:
        if end.epoch == 4:  # two epochs already averaged
            raise KeyboardInterrupt

    cut, task, _ = small_run(tmp_path, "cut")
    with pytest.raises(KeyboardInterrupt):
        fit(cut, task, cfg, out_dir=tmp_path / "cut", progress=False, callbacks=[interrupt])
    fresh = create_model("mlp", task=task, hidden=[32], dropout=0.1)
    resumed = fit(fresh, task, cfg, out_dir=tmp_path / "cut", resume=True, progress=False)
    assert resumed.test == full.test
    for a, b in zip(fresh.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_bad_weights_option() -> None:
    with pytest.raises(ArchsmithError, match="weights"):
        TrainConfig(weights="mean")  # type: ignore[arg-type]
    with pytest.raises(ArchsmithError, match="swa_start"):
        TrainConfig(swa_start=1.0)


def test_on_fit_start_runs_once_on_a_fresh_run_and_not_on_resume(tmp_path) -> None:
    model, task, cfg = small_run(tmp_path, "hook")
    seen: list[object] = []
    first_weight: list[torch.Tensor] = []

    def on_fit_start(t: object) -> None:
        seen.append(t)
        # before the first step: the weights are still the initial ones
        first_weight.append(next(model.parameters()).detach().clone())

    initial = next(model.parameters()).detach().clone()
    model.on_fit_start = on_fit_start  # type: ignore[attr-defined]
    cfg = TrainConfig(epochs=2, batch_size=128, lr=1e-2, seed=3)
    fit(model, task, cfg, out_dir=tmp_path / "run", progress=False)
    assert seen == [task]
    assert torch.equal(first_weight[0], initial)
    more = TrainConfig(epochs=3, batch_size=128, lr=1e-2, seed=3)
    fit(model, task, more, out_dir=tmp_path / "run", resume=True, progress=False)
    assert seen == [task]  # resuming keeps the trained weights: no second initialisation
