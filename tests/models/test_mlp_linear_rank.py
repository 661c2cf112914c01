"""``mlp``'s ``linear_rank``: the rank of a tensorized linear layer as a spec option."""

from __future__ import annotations

import functools

import pytest
import torch

from archsmith.build import build, create_model
from archsmith.errors import ArchsmithError
from archsmith.models.mlp import MLP
from archsmith.registry import get_layer
from archsmith.tensornet.layers import TTLinear


@pytest.mark.parametrize("layer", ["tt", "tt_fast", "btt", "tucker", "cp"])
@pytest.mark.parametrize("rank", [2, 8])
def test_rank_reaches_every_hidden_layer(layer: str, rank: int) -> None:
    torch.manual_seed(0)
    model = create_model(
        "mlp", task="digits-flat", hidden=[32, 32], linear_layer=layer, linear_rank=rank
    )
    torch.manual_seed(0)
    factory = functools.partial(get_layer("linear", layer), rank=rank)
    reference = MLP(64, 10, (32, 32), linear_layer=factory)
    # the same layers with the same initialisation: names, shapes and values agree
    got, want = model.state_dict(), reference.state_dict()
    assert list(got) == list(want)
    assert all(torch.equal(got[k], want[k]) for k in got)
    x = torch.randn(4, 64)
    torch.testing.assert_close(model(x), reference(x))


def test_tt_rank_caps_the_bonds() -> None:
    model = create_model("mlp", task="digits-flat", hidden=[64], linear_layer="tt", linear_rank=3)
    tt = [m for m in model.modules() if isinstance(m, TTLinear)]
    assert tt and all(max(c.shape[0] for c in m.cores) <= 3 for m in tt)
    assert all(max(c.shape[-1] for c in m.cores) <= 3 for m in tt)


def test_unset_rank_changes_nothing() -> None:
    torch.manual_seed(1)
    a = create_model("mlp", task="digits-flat", hidden=[32], linear_layer="tucker")
    torch.manual_seed(1)
    b = MLP(64, 10, (32,), linear_layer="tucker")
    assert {k: v.shape for k, v in a.state_dict().items()} == {
        k: v.shape for k, v in b.state_dict().items()
    }


def test_a_rank_for_the_dense_layer_is_one_line() -> None:
    with pytest.raises(
        ArchsmithError, match=r"options\.linear_rank: the dense linear layer has no rank"
    ):
        create_model("mlp", task="digits-flat", linear_rank=4)
    with pytest.raises(ArchsmithError, match=r"options\.linear_rank: must be >= 1"):
        build(
            {
                "task": "digits-flat",
                "model": "mlp",
                "options": {"linear_layer": "tt", "linear_rank": 0},
            }
        )
