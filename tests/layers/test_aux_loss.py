"""The trainer's objective: model-defined training losses and layers' auxiliary losses."""

from __future__ import annotations

import torch
from torch import nn

from archsmith.layers.aux_loss import collect_aux_loss, training_loss


class _Penalized(nn.Module):
    """A linear layer that asks for ``weight * ||W||^2`` to be added in training."""

    def __init__(self, weight: float, features: int) -> None:
        super().__init__()
        self.lin = nn.Linear(features, features)
        self.weight = weight
        self.aux_loss: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.aux_loss = self.weight * self.lin.weight.pow(2).sum() if self.training else None
        return self.lin(x)


def test_aux_losses_of_all_layers_are_summed_into_the_objective() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(_Penalized(0.5, 3), nn.ReLU(), _Penalized(2.0, 3)).train()
    x, y = torch.randn(4, 3), torch.randn(4, 3)
    loss = training_loss(model, x, y, nn.functional.mse_loss)
    expected = (
        nn.functional.mse_loss(model(x), y)
        + 0.5 * model[0].lin.weight.pow(2).sum()
        + 2.0 * model[2].lin.weight.pow(2).sum()
    )
    torch.testing.assert_close(loss, expected)
    model.eval()
    model(x)
    assert collect_aux_loss(model) is None


def test_a_model_with_its_own_training_loss_uses_it() -> None:
    class TwoExits(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(3, 2), nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(x)

        def training_loss(self, x, y, task_loss):  # type: ignore[no-untyped-def]
            return task_loss(self.a(x), y) + task_loss(self.b(x), y)

    torch.manual_seed(0)
    model = TwoExits()
    x, y = torch.randn(5, 3), torch.randn(5, 2)
    mse = nn.functional.mse_loss
    torch.testing.assert_close(
        training_loss(model, x, y, mse), mse(model.a(x), y) + mse(model.b(x), y)
    )
