import pytest
import torch

from archsmith.build import create_model
from archsmith.registry import get_model_entry
from archsmith.tasks import get_task
from archsmith.tensornet.layers import TensorLinear


def model_task(model: str) -> str:
    return get_model_entry(model).default_task


@pytest.mark.parametrize("linear_layer", ["tt", "tt_fast", "btt", "tucker", "cp"])
@pytest.mark.parametrize("model", ["mlp", "transformer"])
def test_model_with_tensor_linear_trains_a_step(model: str, linear_layer: str) -> None:
    net = create_model(model, linear_layer=linear_layer)
    layers = [m for m in net.modules() if isinstance(m, TensorLinear)]
    assert layers, "the linear_layer option did not reach the blocks"
    task = get_task(model_task(model))
    x, y = task.example_batch(16)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in layers[0].parameters()]
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = task.loss(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]
    assert any(not torch.equal(a, b) for a, b in zip(before, layers[0].parameters(), strict=True))
