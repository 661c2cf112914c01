"""Every registered model builds, runs forward and backward on its task's batch; the built-in
layers agree with naive references written from their papers' equations."""

import math

import pytest
import torch
import torch.nn.functional as F

from archsmith.build import create_model
from archsmith.layers import BatchNorm, LayerNorm2d, SoftmaxAttention
from archsmith.registry import get_model_entry, list_models
from archsmith.tasks import get_task
from helpers import rel_err


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_trains_one_step(name: str) -> None:
    task = get_task(get_model_entry(name).default_task)
    model = create_model(name, task=task)
    x, y = task.example_batch(8)
    out = model(x)
    if task.kind == "sequence":  # logits per position
        expected: tuple[int, ...] = (8, x.shape[1], task.num_outputs)
    elif task.kind == "segmentation":  # logits per voxel
        expected = (8, task.num_outputs, *x.shape[2:])
    else:
        expected = (8, task.num_outputs)
    assert tuple(out.shape) == expected
    loss = task.loss(out, y)
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def naive_attention(x: torch.Tensor, attn: SoftmaxAttention, causal: bool) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d)) V per head, straight from Vaswani et al. (2017), with loops."""
    _, t, dim = x.shape
    h = attn.num_heads
    d = dim // h
    qkv = x @ attn.qkv.weight.T + attn.qkv.bias
    q, k, v = qkv[..., :dim], qkv[..., dim : 2 * dim], qkv[..., 2 * dim :]
    heads = []
    for i in range(h):
        qi, ki, vi = (z[..., i * d : (i + 1) * d] for z in (q, k, v))
        scores = qi @ ki.transpose(1, 2) / math.sqrt(d)
        if causal:
            scores = scores.masked_fill(torch.ones(t, t).triu(1).bool(), float("-inf"))
        heads.append(scores.softmax(-1) @ vi)
    return torch.cat(heads, -1) @ attn.proj.weight.T + attn.proj.bias


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("t", "dim", "heads"), [(5, 12, 3), (1, 8, 2), (7, 6, 1)])
def test_softmax_attention_matches_naive(causal: bool, t: int, dim: int, heads: int) -> None:
    attn = SoftmaxAttention(dim, heads, causal=causal).double()
    x = torch.randn(2, t, dim, dtype=torch.float64, requires_grad=True)
    out = attn(x)
    ref = naive_attention(x, attn, causal)
    assert rel_err(out, ref) < 1e-12
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, [x, *attn.parameters()], g)
    ref_grads = torch.autograd.grad(ref, [x, *attn.parameters()], g)
    for a, b in zip(grads, ref_grads, strict=True):
        assert rel_err(a, b) < 1e-10


def test_batchnorm_any_rank_matches_naive_and_torch() -> None:
    bn = BatchNorm(4).double()
    x = torch.randn(6, 4, 3, 5, dtype=torch.float64)
    out = bn(x)
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    assert rel_err(out, (x - mean) / torch.sqrt(var + bn.eps)) < 1e-12
    ref = torch.nn.BatchNorm2d(4).double()
    ref(x)
    assert rel_err(bn.running_var, ref.running_var) < 1e-12  # running stats as torch keeps them
    flat = torch.randn(10, 4, dtype=torch.float64)
    assert rel_err(BatchNorm(4).double()(flat), torch.nn.BatchNorm1d(4).double()(flat)) < 1e-12


def test_layernorm2d_normalizes_channels_per_position() -> None:
    ln = LayerNorm2d(3).double()
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    mean = x.mean(1, keepdim=True)
    var = x.var(1, unbiased=False, keepdim=True)
    ref = (x - mean) / torch.sqrt(var + ln.eps) * ln.weight[:, None, None] + ln.bias[:, None, None]
    assert rel_err(ln(x), ref) < 1e-12


def test_transformer_is_causal_on_next_token_tasks() -> None:
    task = get_task("mqar")
    model = create_model("transformer", task=task, dim=16, depth=2).eval()
    x, _ = task.example_batch(2)
    out = model(x)
    changed = x.clone()
    changed[:, -1] = (changed[:, -1] + 1) % task.input.vocab_size
    out2 = model(changed)
    # changing the last token must not change any earlier position's prediction
    assert torch.allclose(out[:, :-1], out2[:, :-1], atol=1e-6)
    assert not torch.allclose(out[:, -1], out2[:, -1])


def test_cox_mlp_has_no_output_bias() -> None:
    model = create_model("cox_mlp", task="breast-cancer-survival")
    assert model.head.risk.bias is None
    x, _ = get_task("breast-cancer-survival").example_batch(4)
    assert model(x).shape == (4, 1)


def test_cnn_matches_functional_reference() -> None:
    model = create_model("cnn", task="digits", channels=[4], norm_layer="none").eval().double()
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    conv = model.features[0][0]
    h = F.max_pool2d(F.relu(F.conv2d(x, conv.weight, conv.bias, padding=1)), 2)
    ref = h.mean(dim=(2, 3)) @ model.head.weight.T + model.head.bias
    assert rel_err(model(x), ref) < 1e-12
