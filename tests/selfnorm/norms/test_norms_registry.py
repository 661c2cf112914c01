"""The selfnorm norm layers by name: built through the registry, plugged into an archsmith CNN."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import archsmith.selfnorm.norms  # noqa: F401  (registers the norm layers)
from archsmith.build import create_model
from archsmith.registry import get_layer, list_layers
from archsmith.selfnorm.norms import IBN, BatchChannelNorm, EvoNormB0, EvoNormS0, RegionNorm
from archsmith.tasks import get_task

NORMS: dict[str, type[nn.Module]] = {
    "evonorm_b0": EvoNormB0,
    "evonorm_s0": EvoNormS0,
    "bcn": BatchChannelNorm,
    "ibn": IBN,
    "regionnorm": RegionNorm,
}


def test_names_are_registered_next_to_the_built_in_norms() -> None:
    names = list_layers("norm")
    assert set(NORMS) <= set(names)
    assert {"layernorm", "rmsnorm", "none"} <= set(names)


@pytest.mark.parametrize("name", sorted(NORMS))
@pytest.mark.parametrize("shape", [(4, 40, 5, 3), (2, 7, 9), (3, 6, 2, 3, 2)])
def test_layer_by_name_from_num_features_alone(name: str, shape: tuple[int, ...]) -> None:
    layer = get_layer("norm", name)(shape[1])
    assert type(layer) is NORMS[name]
    x = torch.randn(shape, requires_grad=True)
    out = layer(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    out.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    layer.eval()
    assert torch.isfinite(layer(x)).all()


@pytest.mark.parametrize("name", sorted(NORMS))
def test_cnn_with_norm_layer_trains_one_step(name: str) -> None:
    task = get_task("digits")
    model = create_model("cnn", task=task, norm_layer=name)
    assert sum(isinstance(m, NORMS[name]) for m in model.modules()) == 2  # one per stage
    x, y = task.example_batch(8)
    out = model(x)
    assert out.shape == (8, task.num_outputs)
    loss = task.loss(out, y)
    loss.backward()
    assert torch.isfinite(loss)
    for norm in (m for m in model.modules() if isinstance(m, NORMS[name])):
        for pname, p in norm.named_parameters():
            if pname.startswith("hole_"):  # no mask in a plain CNN: the hole region is empty
                assert p.grad is None
                continue
            assert p.grad is not None and torch.isfinite(p.grad).all()
            assert p.grad.abs().sum() > 0, pname
    model.eval()
    assert torch.isfinite(model(x)).all()
