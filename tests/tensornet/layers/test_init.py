import pytest
import torch

from archsmith.tensornet.layers import BTTLinear, CPLinear, TTLinear, TuckerLinear

BUILDERS = {
    "tt": lambda i, o: TTLinear(i, o, rank=8),
    "tt_default": lambda i, o: TTLinear(i, o),
    "btt": lambda i, o: BTTLinear(i, o, rank=4),
    "tucker": lambda i, o: TuckerLinear(i, o, rank=6),
    "cp": lambda i, o: CPLinear(i, o, rank=32),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_weight_variance_matches_dense_init(name: str) -> None:
    """E[W_ij^2] = 1 / (3 in), nn.Linear's; estimated over 40 freshly built layers.

    The mean of W^2 over 40 layers has a relative standard error of a few percent here, so the
    15% band separates the right scale from, e.g., a std off by sqrt(1.3) (about 14% in std).
    """
    n_in, n_out = 256, 192
    torch.manual_seed(0)
    second_moments = torch.stack(
        [BUILDERS[name](n_in, n_out).dense_weight().detach().pow(2).mean() for _ in range(40)]
    )
    target = 1.0 / (3 * n_in)
    ratio = float(second_moments.mean()) / target
    assert 0.85 < ratio < 1.15, ratio
    # the forward pass keeps the dense layer's output variance too (unit-variance inputs)
    layer = BUILDERS[name](n_in, n_out)
    x = torch.randn(4096, n_in)
    with torch.no_grad():
        out_var = float((layer(x) - layer.bias).var())
    assert 0.3 < out_var / (n_in * target) < 3.0
