import json

from archsmith.cli import main


def test_diagnose_writes_table_json_and_png(capsys, tmp_path) -> None:
    png, js = tmp_path / "snn.png", tmp_path / "snn.json"
    code = main(
        [
            "diagnose",
            "--task",
            "digits-flat",
            "--task-opt",
            "standardize=true",
            "--model",
            "snn",
            "--opt",
            "depth=12",
            "--opt",
            "width=64",
            "--png",
            str(png),
            "--json",
            str(js),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = json.loads(js.read_text())
    assert [r["kind"] for r in rows] == ["SELU"] * 12
    assert all(abs(r["mean"]) < 0.2 and 0.6 < r["var"] < 1.5 for r in rows)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "body.11.1" in out


def test_diagnose_bad_inputs_are_one_line(capsys, tmp_path) -> None:
    code = main(["diagnose", "--task", "digits", "--model", "snn", "--batch-size", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--batch-size must be >= 2" in err
    # a PNG path under a regular file cannot be created: reported in one line, not raised
    (tmp_path / "file").write_text("x")
    code = main(
        [
            "diagnose",
            "--task",
            "digits",
            "--model",
            "snn",
            "--png",
            str(tmp_path / "file" / "x.png"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "cannot write" in err


def test_train_on_user_survival_csv(capsys, tmp_path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    n = 200
    age = rng.normal(60, 10, n)
    stage = rng.choice(["I", "II", "III"], n)
    risk = 0.05 * (age - 60) + (stage == "III") * 1.0
    time = rng.exponential(np.exp(-risk) * 10)
    censor = rng.exponential(15, n)
    event = (time <= censor).astype(int)
    lines = ["age,stage,time,event"] + [
        f"{a:.1f},{s},{min(t, c):.3f},{e}"
        for a, s, t, c, e in zip(age, stage, time, censor, event, strict=True)
    ]
    path = tmp_path / "surv.csv"
    path.write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    code = main(
        [
            "train",
            "--task",
            f"csv:{path}",
            "--duration",
            "time",
            "--event",
            "event",
            "--model",
            "snn_cox",
            "--epochs",
            "20",
            "--lr",
            "1e-3",
            "--out",
            str(run),
            "--no-progress",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["c_index"] > 0.6  # the simulated hazard depends on age and stage
    assert "test c_index:" in out
