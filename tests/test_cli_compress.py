"""``archsmith compress`` end to end on a small registered model, and its one-line errors."""

import json

import pytest
import torch

from archsmith.cli import main
from archsmith.tasks import get_task
from archsmith.tensornet.compress.saving import load_compressed
from archsmith.tensornet.layers import TensorLinear


def _one_line_error(capsys, argv, pattern):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("archsmith: error:")
    assert pattern in err
    return err


@pytest.mark.slow
def test_compress_a_registered_model_end_to_end(tmp_path, capsys):
    out = tmp_path / "c"
    argv = ["compress", "--model", "mlp", "--task", "digits-flat", "--opt", "hidden=[32,32]"]
    argv += ["--method", "mpo", "--target-params", "0.5", "--heal-steps", "5", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "compressed" in printed and "healed (5 steps)" in printed
    report = json.loads((out / "report.json").read_text())
    original, compressed, healed = report["rows"]
    assert compressed["linear_params"] <= 0.5 * original["linear_params"]
    assert compressed["linear_reduction"] >= 0.5
    assert len(report["heal_losses"]) == 5
    model = load_compressed(out)
    assert all(isinstance(model.get_submodule(n), TensorLinear) for n in report["ranks"])
    x = get_task("digits-flat").test.x
    with torch.no_grad():
        acc = float((model(x).argmax(1) == get_task("digits-flat").test.y).double().mean())
    assert acc == pytest.approx(healed["accuracy"])
    # the same --out again is refused; --force replaces it
    _one_line_error(capsys, argv, "not empty")
    assert main([*argv[:-2], "--heal-steps", "0", "--out", str(out), "--force"]) == 0


@pytest.mark.slow
def test_compress_a_trained_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    train = ["train", "--task", "digits-flat", "--model", "mlp", "--opt", "hidden=[32]"]
    assert main([*train, "--epochs", "2", "--out", str(run), "--no-progress"]) == 0
    out = tmp_path / "c"
    argv = ["compress", "--checkpoint", str(run), "--method", "tucker"]
    assert main([*argv, "--target-params", "0.3", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert "accuracy_drop" in report["rows"][1]
    assert report["rows"][0]["accuracy"] > 0.5  # the trained weights were loaded


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        (["--model", "mlp", "--method", "mpo", "--target-params", "1.5"], "--target-params"),
        (["--model", "mlp", "--method", "mpo", "--target-params", "0"], "--target-params"),
        (["--model", "mlp", "--method", "cp", "--target-params", "0.5"], "--method"),
        (["--method", "mpo", "--target-params", "0.5"], "one of the arguments"),
        (["--model", "nope", "--method", "mpo", "--target-params", "0.5"], "nope"),
        (["--model", "mlp", "--method", "mpo", "--target-params", "half"], "--target-params"),
        (
            ["--checkpoint", "/nonexistent/run", "--method", "mpo", "--target-params", "0.5"],
            "not a directory",
        ),
        (
            [
                "--pretrained",
                "minilm",
                "--task",
                "digits",
                "--method",
                "mpo",
                "--target-params",
                "0.5",
            ],
            "--task",
        ),
        (
            ["--model", "mlp", "--method", "mpo", "--target-params", "0.5", "--heal-steps", "-1"],
            "--heal-steps",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, extra, pattern):
    _one_line_error(capsys, ["compress", *extra, "--out", str(tmp_path / "o")], pattern)
    assert not (tmp_path / "o").exists()


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    argv = ["compress", "--model", "mlp", "--method", "mpo", "--target-params", "0.5"]
    _one_line_error(capsys, [*argv, "--out", str(f)], "not a directory")
