"""ArcFace IR-SE50: the public checkpoint's key layout, strict loading, the identity loss."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from micromotion.errors import CheckpointError
from micromotion.networks.irse import IRSE, IdentityLoss, face_crop, irse50
from micromotion.weights.irse import load_irse50


@pytest.fixture(scope="module")
def net() -> IRSE:
    torch.manual_seed(0)
    return irse50().eval()


def cheap_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's keys and shapes with one-element storages: a tiny file on disk."""
    return {
        k: torch.full((), 0.5, dtype=v.dtype).expand(v.shape) for k, v in model.state_dict().items()
    }


def test_layout_matches_model_ir_se50(net):
    state = net.state_dict()
    assert len(state) == 397  # as in model_ir_se50.pth (num_batches_tracked included)
    assert sum(p.numel() for p in net.parameters()) == 43_797_696
    shapes = {
        "input_layer.0.weight": (64, 3, 3, 3),
        "input_layer.2.weight": (64,),
        "body.0.res_layer.5.fc1.weight": (4, 64, 1, 1),
        "body.3.shortcut_layer.0.weight": (128, 64, 1, 1),
        "body.3.shortcut_layer.1.running_var": (128,),
        "body.23.res_layer.3.weight": (512, 512, 3, 3),
        "body.23.res_layer.5.fc2.weight": (512, 32, 1, 1),
        "output_layer.3.weight": (512, 512 * 7 * 7),
        "output_layer.4.bias": (512,),
    }
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape, key
    assert "body.0.shortcut_layer.0.weight" not in state  # same width: parameter-free subsample
    assert list(state)[:6] == [
        "input_layer.0.weight",
        "input_layer.1.weight",
        "input_layer.1.bias",
        "input_layer.1.running_mean",
        "input_layer.1.running_var",
        "input_layer.1.num_batches_tracked",
    ]
    assert list(state)[6:8] == ["input_layer.2.weight", "output_layer.0.weight"]


def test_shapes():
    torch.manual_seed(0)
    tiny = IRSE(depths=(1, 2, 1, 1), widths=(16, 16, 32, 32), embed_dim=8).eval()
    emb = tiny(torch.rand(3, 3, 112, 112) * 2 - 1)
    assert emb.shape == (3, 8)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
    with pytest.raises(ValueError, match="112"):
        tiny(torch.zeros(1, 3, 128, 128))
    assert face_crop(torch.zeros(2, 3, 1024, 1024)).shape == (2, 3, 112, 112)
    # 1024 px: average-pooled ×4, then StyleCLIP's crop rows 35:223, columns 32:220.
    x = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(0))
    expected = F.adaptive_avg_pool2d(F.avg_pool2d(x, 4)[:, :, 35:223, 32:220], 112)
    torch.testing.assert_close(face_crop(x), expected)


def test_strict_loading(net, tmp_path):
    good = tmp_path / "model_ir_se50.pth"
    torch.save(cheap_state(net), good)
    model = load_irse50(good)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert float(model.output_layer[3].weight[0, 0]) == 0.5

    # Files written before PyTorch 0.4.1 have no num_batches_tracked: still IR-SE50.
    old = {k: v for k, v in cheap_state(net).items() if not k.endswith("num_batches_tracked")}
    torch.save(old, tmp_path / "old.pth")
    load_irse50(tmp_path / "old.pth")

    def expect(state, *fragments):
        path = tmp_path / "bad.pth"
        torch.save(state, path)
        with pytest.raises(CheckpointError) as info:
            load_irse50(path)
        message = str(info.value)
        assert "\n" not in message and str(path) in message
        for fragment in fragments:
            assert fragment in message, message

    state = cheap_state(net)
    del state["body.7.res_layer.1.weight"]
    expect(state, "missing", "body.7.res_layer.1.weight")
    expect({**cheap_state(net), "head.kernel": torch.zeros(2)}, "unexpected", "head.kernel")
    state = cheap_state(net)
    state["output_layer.3.weight"] = torch.zeros(512, 512 * 14 * 14)[:, :1].expand(512, 100352)
    expect(state, "output_layer.3.weight", "[512, 100352]")
    expect({"state": torch.nn.Linear(2, 2)}, "weights-only")  # a pickled module: refused
    with pytest.raises(CheckpointError, match="no such file"):
        load_irse50(tmp_path / "missing.pth")


def test_identity_loss(net):
    loss = IdentityLoss(net)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        reference = loss.embed(x)
        same = loss(x, reference)
    assert same.shape == (2,)
    torch.testing.assert_close(same, torch.zeros(2), atol=1e-6, rtol=0)

    torch.manual_seed(0)
    tiny = IdentityLoss(IRSE(depths=(1, 1, 1, 1), widths=(16, 16, 32, 32), embed_dim=8).eval())
    y = x.clone().requires_grad_(True)
    other = tiny(y, tiny.embed(x.flip(0)))
    assert (other > 1e-4).all()
    other.sum().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0
