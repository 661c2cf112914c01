import pytest
import torch

from archsmith.tensornet.core import choose_modes
from archsmith.tensornet.layers import BTTLinear, CPLinear, TensorLinear, TTLinear, TuckerLinear
from helpers import rel_err

LAYERS = {
    "tt": lambda i, o: TTLinear(i, o, rank=3),
    "tt4": lambda i, o: TTLinear(i, o, rank=[2, 3, 2], num_cores=4),
    "tt_fast": lambda i, o: TTLinear(i, o, rank=3, layout="fast"),
    "btt": lambda i, o: BTTLinear(i, o, rank=2),
    "tucker": lambda i, o: TuckerLinear(i, o, rank=3),
    "tucker_mixed": lambda i, o: TuckerLinear(
        i, o, rank=(2, 3, 1, 2, 2), in_modes=choose_modes(i, 3), out_modes=choose_modes(o, 2)
    ),
    "cp": lambda i, o: CPLinear(i, o, rank=4),
}


def _reference(layer: TensorLinear, x: torch.Tensor) -> torch.Tensor:
    """Naive: rebuild the dense weight (autograd through the reconstruction), then matmul."""
    y = x @ layer.dense_weight().T
    return y + layer.bias if layer.bias is not None else y


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize(("n_in", "n_out"), [(100, 96), (97, 384)])
def test_gradients_match_dense_reconstruction(name: str, n_in: int, n_out: int) -> None:
    layer = LAYERS[name](n_in, n_out).double()
    x = torch.randn(5, 2, n_in, dtype=torch.float64, requires_grad=True)
    g = torch.randn(5, 2, n_out, dtype=torch.float64)
    params = [x, *layer.parameters()]
    grads = torch.autograd.grad((layer(x) * g).sum(), params)
    ref_out = _reference(layer, x)
    ref = torch.autograd.grad((ref_out * g).sum(), params)
    assert rel_err(layer(x), ref_out) < 1e-12
    for a, b in zip(grads, ref, strict=True):
        assert rel_err(a, b) < 1e-10


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_gradcheck(name: str) -> None:
    layer = LAYERS[name](20, 12).double()
    x = torch.randn(3, 20, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda inp, *ps: layer(inp), (x, *layer.parameters()), atol=1e-7
    )
