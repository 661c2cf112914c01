import pytest
import torch
from torch import nn

from archsmith.checkpoint import load_model, load_training_state, save_model, save_training_state
from archsmith.errors import ArchsmithError


def make() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def test_model_roundtrip_with_buffers(tmp_path) -> None:
    a = make()
    a(torch.randn(8, 3))  # updates BatchNorm running statistics
    path = save_model(tmp_path / "m.safetensors", a)
    b = load_model(path, make())
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_shared_weights_can_be_saved(tmp_path) -> None:
    a = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    a[1].weight = a[0].weight  # tied
    b = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    b[1].weight = b[0].weight
    load_model(save_model(tmp_path / "t.safetensors", a), b)
    assert torch.equal(b[1].weight, a[0].weight)


def test_mismatch_and_garbage_are_one_line_errors(tmp_path) -> None:
    path = save_model(tmp_path / "m.safetensors", make())
    with pytest.raises(
        ArchsmithError,
        match=r"0\.(weight has shape \[4, 3\], the model \[5, 3\]|bias has shape \[4\], the model \[5\])",
    ):
        load_model(path, nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(4), nn.Linear(4, 2)))
    with pytest.raises(ArchsmithError, match="does not match the model: missing"):
        load_model(path, nn.Sequential(make(), nn.Linear(2, 2)))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x80\x04 definitely not a safetensors file")
    with pytest.raises(ArchsmithError, match="is not a readable safetensors file"):
        load_model(junk, make())
    with pytest.raises(ArchsmithError, match="does not exist"):
        load_model(tmp_path / "nope.safetensors", make())


def test_training_state_roundtrip_continues_identically(tmp_path) -> None:
    def step(model: nn.Module, opt: torch.optim.Optimizer) -> None:
        loss = (
            model(torch.randn(16, 3)).square().mean()
            + torch.nn.functional.dropout(torch.ones(3), 0.5).sum()
        )
        opt.zero_grad()
        loss.backward()
        opt.step()

    torch.manual_seed(1)
    model = make()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    step(model, opt)
    save_training_state(tmp_path / "r.safetensors", model, opt, {"epoch": 3, "best": 0.5})
    step(model, opt)
    expected = [p.detach().clone() for p in model.parameters()]

    other = make()
    other_opt = torch.optim.AdamW(other.parameters(), lr=1.0)  # hyper-parameters come back too
    state = load_training_state(tmp_path / "r.safetensors", other, other_opt)
    assert state == {"epoch": 3, "best": 0.5}
    step(other, other_opt)  # same RNG stream, same Adam moments -> bit-identical weights
    for a, b in zip(other.parameters(), expected, strict=True):
        assert torch.equal(a, b)
