"""Registered reversible models and spec blocks: twins, memory, options, the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from archsmith.build import build, create_model
from archsmith.cli import main
from archsmith.cost import measure
from archsmith.errors import ArchsmithError
from archsmith.registry import get_model_entry
from archsmith.tasks import get_task
from helpers import rel_err


def _untie_norms(model: nn.Module) -> None:
    """Random norm scales and shifts, as after training (seeded: both twins get the same).

    At the initial scale 1 and shift 0, ``norm1`` of an inverted bottleneck is followed by ReLU,
    a depthwise convolution and another BatchNorm: per channel the loss is invariant to its
    scale up to BatchNorm's ``eps``, so that scale's gradient is ~1e-5 of the others and pure
    cancellation. Float32 autograd itself is then off by ~1e-2 relative against float64 (the
    twin as much as the engine); in float64 the engine agrees to 1e-11 even there (tested below).
    """
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _BatchNorm | nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)


@pytest.mark.parametrize(
    ("dtype", "untie", "tol"),
    [(torch.float64, False, 1e-10), (torch.float64, True, 1e-10), (torch.float32, True, 1e-4)],
)
@pytest.mark.parametrize(
    ("name", "options"),
    [("rev_cnn", {"depths": [3, 2], "dropout": 0.1}), ("rev_transformer", {"depth": 3})],
)
def test_model_twin_has_same_weights_and_gradients(
    name: str, options: dict, dtype: torch.dtype, untie: bool, tol: float
) -> None:
    task = get_task(get_model_entry(name).default_task)
    x, y = task.example_batch(8)
    if x.is_floating_point():
        x = x.to(dtype)
    results = []
    for reversible in (True, False):
        torch.manual_seed(0)
        model = create_model(name, task=task, reversible=reversible, **options).to(dtype)
        if untie:
            _untie_norms(model)
        torch.manual_seed(1)
        loss = task.loss(model(x), y)
        loss.backward()
        results.append((loss.detach(), [p.grad for p in model.parameters()]))
    (loss, grads), (ref_loss, ref_grads) = results
    # the same computation, on differently laid-out (and aligned) tensors: vectorized
    # reductions (BatchNorm's statistics) may round differently in the last bit
    assert rel_err(loss, ref_loss) < tol / 100
    assert len(grads) == len(ref_grads)
    for g, r in zip(grads, ref_grads, strict=True):
        assert g is not None and r is not None
        assert rel_err(g, r) < tol


def test_rev_cnn_saved_bytes_do_not_grow_with_depth() -> None:
    task = get_task("digits")
    x, _ = task.example_batch(4)

    def saved(depth: int, reversible: bool) -> int:
        model = create_model("rev_cnn", task=task, depths=[depth, depth], reversible=reversible)
        return measure(model, x, timing=False).saved_activation_bytes

    assert saved(3, True) == saved(1, True)
    assert saved(3, False) > 1.8 * saved(1, False)


def test_spec_blocks_build_and_train() -> None:
    mqar = get_task("mqar")
    model = build(
        {
            "task": "mqar",
            "blocks": [
                {"type": "embed", "dim": 16},
                {"type": "rev_transformer", "depth": 2, "num_heads": 2},
            ],
        }
    )
    x, y = mqar.example_batch(4)
    out = model(x)
    assert out.shape == (4, x.shape[1], mqar.num_outputs)
    mqar.loss(out, y).backward()
    digits = build(
        {
            "task": "digits",
            "blocks": [
                {"type": "conv", "out_channels": 6},
                {"type": "rev_mbconv", "depth": 3, "expand_ratio": 2},
            ],
        }
    )
    xd, _ = get_task("digits").example_batch(4)
    assert digits(xd).shape == (4, 10)


def test_bad_options_raise() -> None:
    with pytest.raises(ArchsmithError, match="depths"):
        create_model("rev_cnn", channels=[8, 16], depths=[1])
    with pytest.raises(ArchsmithError, match="odd"):
        create_model("rev_cnn", kernel_size=4)
    with pytest.raises(ArchsmithError, match="must be >= 2"):
        create_model("rev_cnn", channels=[1])
    with pytest.raises(ArchsmithError, match="divisible"):
        create_model("rev_transformer", dim=10, num_heads=4)
    with pytest.raises(ArchsmithError, match="rev_transformer"):
        build({"task": "digits", "blocks": [{"type": "rev_transformer"}]})


@pytest.mark.slow
def test_train_rev_cnn_cli(capsys, tmp_path) -> None:
    run = tmp_path / "run"
    code = main(
        [
            *("train", "--task", "digits", "--model", "rev_cnn"),
            *("--epochs", "2", "--no-progress", "--out", str(run)),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.5  # ten classes: chance is 0.1
    assert "test accuracy" in out
