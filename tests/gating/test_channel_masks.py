"""Channel masks (Fire Together Wire Together): the teacher mask against a per-sample loop, the
gathered eval forward against the dense block times the mask, the mask loss and gradient flow,
and per-sample FLOPs against archsmith.cost."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from archsmith.build import build, create_model
from archsmith.cost import measure
from archsmith.errors import ArchsmithError
from archsmith.gating.channel_masks import (
    ChannelMaskedConv,
    MaskedCNN,
    MaskedConvBlock,
    MaskGrad,
    channel_saliency,
    mass_mask,
)
from archsmith.layers.aux_loss import collect_aux_loss, training_loss
from archsmith.tasks import get_task
from archsmith.train import TrainConfig, fit
from helpers import rel_err


def naive_teacher(out: torch.Tensor, mass: float) -> torch.Tensor:
    """FTWT's target from the paper's description, one sample and one channel at a time: rank
    channels by their heatmap peak, add them in that order until ``mass`` of the total is
    covered; channels with zero peak are never kept."""
    b, c = out.shape[:2]
    keep = torch.zeros(b, c, dtype=torch.bool)
    for n in range(b):
        peaks = [float(out[n, j].abs().max()) for j in range(c)]
        total = sum(peaks)
        covered = 0.0
        for j in sorted(range(c), key=lambda j: -peaks[j]):
            if total == 0 or covered >= mass * total - 1e-9 or peaks[j] == 0:
                break
            keep[n, j] = True
            covered += peaks[j]
    return keep


def test_saliency_is_the_heatmap_peak() -> None:
    out = torch.randn(3, 4, 5, 6)
    ref = torch.tensor([[out[n, j].abs().max().item() for j in range(4)] for n in range(3)])
    assert torch.equal(channel_saliency(out), ref)


def test_mass_mask_hand_computed() -> None:
    s = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0]])  # shares 0.4, 0.3, 0.2, 0.1, 0
    assert mass_mask(s, 0.4).tolist() == [[True, False, False, False, False]]
    assert mass_mask(s, 0.5).tolist() == [[True, True, False, False, False]]
    assert mass_mask(s, 0.9).tolist() == [[True, True, True, False, False]]
    assert mass_mask(s, 1.0).tolist() == [[True, True, True, True, False]]  # zero: never kept
    assert mass_mask(s[:, [3, 0, 4, 2, 1]], 0.7).tolist() == [[False, True, False, False, True]]


@pytest.mark.parametrize("mass", [0.3, 0.6, 0.9, 0.99, 1.0])
def test_mass_mask_matches_loop(mass: float) -> None:
    gen = torch.Generator().manual_seed(int(mass * 100))
    out = F.relu(torch.randn(6, 16, 3, 3, generator=gen, dtype=torch.float64))
    out[0, :5] = 0  # dead channels
    out[1] = 0  # a sample with no activity at all
    expected = naive_teacher(out, mass)
    assert torch.equal(mass_mask(channel_saliency(out), mass), expected)
    assert not bool(expected[1].any()) and not bool(expected[0, :5].any())


def test_mass_mask_rejects_bad_mass() -> None:
    with pytest.raises(ArchsmithError, match="mass"):
        mass_mask(torch.ones(1, 3), 0.0)
    with pytest.raises(ArchsmithError, match="mass"):
        ChannelMaskedConv(2, 3, mass=1.5)


def _block(
    threshold: float = 0.5, detach_input: bool = True, mask_grad: MaskGrad = "ste"
) -> ChannelMaskedConv:
    torch.manual_seed(0)
    block = ChannelMaskedConv(
        5, 7, threshold=threshold, detach_input=detach_input, mask_grad=mask_grad
    ).double()
    with torch.no_grad():  # spread the predictions around the threshold; non-trivial BN stats
        block.predictor.linear.weight.normal_(std=2.0)
        block.predictor.linear.bias.zero_()
        assert block.bn.running_mean is not None and block.bn.running_var is not None
        block.bn.running_mean.normal_()
        block.bn.running_var.uniform_(0.5, 2.0)
        block.bn.weight.normal_()
        block.bn.bias.normal_()
    return block


def _dense_reference(block: ChannelMaskedConv, x: torch.Tensor) -> torch.Tensor:
    """``relu(BN_eval(conv(x)))`` written out with the block's weights."""
    y = F.conv2d(x, block.conv.weight, padding=1)
    bn = block.bn
    assert bn.running_mean is not None and bn.running_var is not None
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    y = (y - bn.running_mean[:, None, None]) * scale[:, None, None] + bn.bias[:, None, None]
    return F.relu(y)


def test_eval_zeroes_exactly_the_channels_below_threshold() -> None:
    block = _block().eval()
    x = torch.randn(9, 5, 6, 6, dtype=torch.float64)
    in_mask = torch.rand(9, 5) < 0.7
    in_mask[:, 0] = True
    in_mask[:, 4] = False  # a channel no sample has: the gather skips it
    x = x * in_mask[:, :, None, None]
    out, mask = block(x, in_mask)
    probs = torch.sigmoid(x.mean(dim=(2, 3)) @ block.predictor.linear.weight.T)
    expected_mask = probs >= 0.5
    assert torch.equal(mask, expected_mask)
    assert 0 < int(mask.sum()) < mask.numel()  # the case really masks, and keeps some
    dense = _dense_reference(block, x)
    assert rel_err(out, dense * expected_mask[:, :, None, None]) < 1e-12
    # masked channels are exactly zero; kept channels equal the dense block
    assert bool((out[~expected_mask] == 0).all())
    assert rel_err(out[expected_mask], dense[expected_mask]) < 1e-12
    block.threshold = 1.0  # sigmoid < 1: nothing is computed but the predictor
    out, mask = block(x, in_mask)
    assert not bool(mask.any()) and bool((out == 0).all())
    assert block.last_batch_flops == 9 * 2 * 5 * 7


def test_training_forward_loss_and_gradients() -> None:
    block = _block().train()
    x = torch.randn(8, 5, 4, 4, dtype=torch.float64, requires_grad=True)
    out, mask = block(x)
    dense = F.relu(block.bn(block.conv(x)))  # train-mode BN: batch statistics, as the block
    assert rel_err(out, dense * mask[:, :, None, None]) < 1e-12
    logits = x.detach().mean(dim=(2, 3)) @ block.predictor.linear.weight.T
    logits = logits + block.predictor.linear.bias
    teacher = naive_teacher(dense.detach(), block.mass)
    assert block.last_target is not None and torch.equal(block.last_target, teacher)
    bce = F.binary_cross_entropy_with_logits(logits, teacher.double())
    assert block.aux_loss is not None and rel_err(block.aux_loss, bce) < 1e-12

    # task gradient: reaches the input and the conv, but not through masked channels
    g = torch.randn_like(out)
    gx, gw = torch.autograd.grad(out, [x, block.conv.weight], g, retain_graph=True)
    ref_gx, ref_gw = torch.autograd.grad(dense, [x, block.conv.weight], g * mask[:, :, None, None])
    assert rel_err(gx, ref_gx) < 1e-12 and rel_err(gw, ref_gw) < 1e-12
    # straight-through: the task reaches the predictor as if the mask were sigmoid(logits)
    (g_pred,) = torch.autograd.grad(out, [block.predictor.linear.weight], g, retain_graph=True)
    p = torch.sigmoid(logits)
    d_gate = (g * dense).sum(dim=(2, 3))  # [B, C_out]
    ref_pred = (d_gate * p * (1 - p)).T @ x.detach().mean(dim=(2, 3))
    assert rel_err(g_pred, ref_pred) < 1e-12
    # the mask loss trains the predictor and (decoupled) nothing else
    params = [x, block.conv.weight, block.predictor.linear.weight, block.predictor.linear.bias]
    grads = torch.autograd.grad(block.aux_loss, params, allow_unused=True)
    assert grads[0] is None and grads[1] is None
    assert grads[2] is not None and float(grads[2].abs().sum()) > 0
    d_logits = (p - teacher.double()) / p.numel()  # d BCE / d logits, by hand
    assert rel_err(grads[2], d_logits.T @ x.detach().mean(dim=(2, 3))) < 1e-12
    assert grads[3] is not None and rel_err(grads[3], d_logits.sum(0)) < 1e-12


def test_strictly_decoupled_predictor_gets_no_task_gradient() -> None:
    block = _block(mask_grad="none").train()
    x = torch.randn(4, 5, 3, 3, dtype=torch.float64)
    out, mask = block(x)
    assert rel_err(out, F.relu(block.bn(block.conv(x))) * mask[:, :, None, None]) < 1e-12
    grads = torch.autograd.grad(out.sum(), list(block.predictor.parameters()), allow_unused=True)
    assert all(g is None for g in grads)
    with pytest.raises(ArchsmithError, match="mask_grad"):
        ChannelMaskedConv(2, 3, mask_grad="sometimes")  # type: ignore[arg-type]


def test_joint_mode_lets_the_mask_loss_reach_the_input() -> None:
    block = _block(detach_input=False).train()
    x = torch.randn(4, 5, 3, 3, dtype=torch.float64, requires_grad=True)
    block(x)
    assert block.aux_loss is not None
    (gx,) = torch.autograd.grad(block.aux_loss, [x])
    assert float(gx.abs().sum()) > 0


def test_gradcheck_eval_path_float64() -> None:
    block = _block().eval()
    x = torch.randn(3, 5, 4, 4, dtype=torch.float64, requires_grad=True)
    _, mask = block(x)
    assert 0 < int(mask.sum()) < mask.numel()
    # the mask is piecewise constant in x: away from the threshold the gathered path must have
    # the gradients of dense * mask, in x and in the kept filters
    assert torch.autograd.gradcheck(lambda x: block(x)[0], (x,))
    out = block(x)[0]
    g = torch.randn_like(out)
    gw = torch.autograd.grad(out, block.conv.weight, g)[0]
    ref = _dense_reference(block, x) * mask[:, :, None, None]
    ref_gw = torch.autograd.grad(ref, block.conv.weight, g)[0]
    assert rel_err(gw, ref_gw) < 1e-12
    dropped = ~mask.any(0)  # filters no sample keeps get no gradient
    assert bool((gw[dropped] == 0).all())


def test_per_sample_flops_match_archsmith_cost() -> None:
    task = get_task("digits")
    torch.manual_seed(0)
    model = create_model("masked_cnn", task=task, channels=(8, 16, 16))
    assert isinstance(model, MaskedCNN)
    with torch.no_grad():  # predictions spread around the threshold
        for block in model.masked_blocks:
            block.predictor.linear.weight.normal_(std=3.0)
            block.predictor.linear.bias.zero_()
    model.eval()
    x, _ = task.example_batch(6)
    with torch.no_grad():
        model(x)
    assert model.last_flops is not None
    per_sample = model.last_flops.clone()
    assert len(set(per_sample.tolist())) > 1  # samples really differ
    order = per_sample.argsort()  # the cheapest, the dearest and one between
    for i in (int(order[0]), int(order[3]), int(order[-1])):
        counted = measure(model, x[i : i + 1], timing=False).forward_flops
        assert float(per_sample[i]) == counted
    model.set_threshold(0.0)  # every channel kept: the dense network plus the predictors
    predictors = sum(
        2 * b.predictor.linear.in_features * b.predictor.linear.out_features
        for b in model.masked_blocks
    )
    assert measure(model, x[:2], timing=False).forward_flops == 2 * (model.dense_flops + predictors)
    dense = create_model("cnn", task=task, channels=(8, 16, 16))
    dense_head = 2 * 16 * 10
    assert measure(dense.eval(), x[:1], timing=False).forward_flops == model.dense_flops
    assert model.head_flops == dense_head


def test_registered_model_trains_with_the_mask_loss() -> None:
    task = get_task("digits")
    torch.manual_seed(0)
    model = create_model("masked_cnn", task=task, channels=(8, 16, 32), mass=0.8)
    x, y = task.example_batch(32)
    loss = training_loss(model, x, y, task.loss)
    aux = collect_aux_loss(model)
    assert aux is not None and float(aux.detach()) > 0
    assert float(loss.detach()) == pytest.approx(
        float((task.loss(model(x), y) + aux).detach()), rel=1e-6
    )
    result = fit(model, task, TrainConfig(epochs=4, batch_size=64), progress=False)
    assert result.test["accuracy"] > 0.5
    assert isinstance(model, MaskedCNN) and model.last_flops is not None
    # the predictors learned to drop channels: fewer FLOPs than the dense network
    assert float(model.last_flops.mean()) < model.dense_flops


def test_masked_conv_spec_block() -> None:
    spec = {
        "task": "digits",
        "blocks": [
            {"type": "conv", "out_channels": 8},
            {"type": "masked_conv", "out_channels": 12, "mass": 0.7},
            {"type": "pool"},
            {"type": "masked_conv", "out_channels": 16},
            {"type": "global_pool"},
            {"type": "head"},
        ],
    }
    torch.manual_seed(0)
    net = build(spec)
    blocks = [m for m in net.modules() if isinstance(m, MaskedConvBlock)]
    assert len(blocks) == 2 and blocks[0].mass == 0.7
    task = get_task("digits")
    x, y = task.example_batch(8)
    loss = training_loss(net, x, y, task.loss)
    assert all(b.aux_loss is not None for b in blocks)
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())
    # eval: the second block reads the first one's zeros as skipped input channels
    net.eval()
    with torch.no_grad():
        for b in blocks:
            b.predictor.linear.weight.normal_(std=3.0)
            b.predictor.linear.bias.zero_()
        net(x)
    first, second = blocks
    assert first.last_mask is not None and second.last_flops is not None
    kept_in = first.last_mask.sum(1)  # max-pooling keeps masked channels at zero
    assert second.last_mask is not None
    expected = 2 * 9 * 4 * 4 * kept_in * second.last_mask.sum(1) + 2 * 12 * 16
    assert torch.equal(second.last_flops, expected)
    with pytest.raises(ArchsmithError, match="kernel_size"):
        build({**spec, "blocks": [{"type": "masked_conv", "out_channels": 4, "kernel_size": 2}]})
