"""The StyleGAN2 generator: shapes, equivalence of implementations, noise, truncation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers import randomise, tiny_config, tiny_generator
from micromotion.networks.stylegan2 import (
    Generator,
    GeneratorConfig,
    _fir_kernel,
    _upsample2d_fast,
    upfirdn2d_reference,
)


@pytest.mark.parametrize("res", [4, 8, 16, 32, 64])
def test_shapes_at_every_small_resolution(res):
    n_blocks = int(math.log2(res)) - 1
    G = randomise(Generator(tiny_config(img_resolution=res, channels=(8,) * n_blocks)))
    assert G.num_ws == 2 * int(math.log2(res)) - 2
    ws = G.mapping(torch.randn(3, G.z_dim))
    assert ws.shape == (3, G.num_ws, G.w_dim)
    img = G.synthesis(ws)
    assert img.shape == (3, 3, res, res)
    assert torch.isfinite(img).all()


def test_config_f_1024_layout():
    cfg = GeneratorConfig.from_channel_base(1024)
    assert cfg.channels == (512, 512, 512, 512, 512, 256, 128, 64, 32)
    assert cfg == GeneratorConfig.from_channel_multiplier(1024, channel_multiplier=2)
    assert cfg.num_ws == 18
    assert GeneratorConfig.from_channel_multiplier(256, channel_multiplier=1).channels[-1] == 64


@pytest.mark.parametrize(
    "overrides",
    [{}, {"conv_clamp": 0.5}, {"use_noise": False}, {"img_channels": 1}, {"mapping_features": 7}],
)
def test_fast_path_equals_reference_path(overrides):
    G = tiny_generator(1, **overrides)
    ws = torch.randn(3, G.num_ws, G.w_dim, requires_grad=True)
    fast = G.synthesis(ws, impl="fast")
    ref = G.synthesis(ws, impl="reference")
    assert fast.abs().max() > 0.1
    torch.testing.assert_close(fast, ref, atol=1e-4, rtol=1e-4)
    (gfast,) = torch.autograd.grad(fast.square().sum(), ws)
    (gref,) = torch.autograd.grad(ref.square().sum(), ws)
    torch.testing.assert_close(gfast, gref, atol=1e-3 * gref.abs().max().item(), rtol=1e-3)


def test_conv_clamp_bounds_output():
    G = tiny_generator(2, conv_clamp=0.05)
    img = G.synthesis(torch.randn(2, G.num_ws, G.w_dim) * 3)
    # The last ToRGB clamps its output and the upsampled skip image is bounded by the
    # previous clamps times the FIR gain, so the image stays small.
    assert img.abs().max() <= 0.05 * (len(G.config.resolutions) + 1)


def test_upsample_fast_matches_zero_insertion():
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    k = _fir_kernel().double()
    torch.testing.assert_close(
        _upsample2d_fast(x, k), upfirdn2d_reference(x, k * 4, up=2, pad=(2, 1))
    )
    # A constant image stays constant inside (the FIR has unit DC gain after upsampling).
    ones = torch.ones(1, 1, 6, 6, dtype=torch.float64)
    inner = _upsample2d_fast(ones, k)[..., 2:-2, 2:-2]
    torch.testing.assert_close(inner, torch.ones_like(inner))


def test_noise_modes(tiny_G):
    ws = torch.randn(2, tiny_G.num_ws, tiny_G.w_dim)
    const1 = tiny_G.synthesis(ws, noise_mode="const")
    const2 = tiny_G.synthesis(ws, noise_mode="const")
    torch.testing.assert_close(const1, const2, atol=0, rtol=0)
    torch.manual_seed(0)
    rand1 = tiny_G.synthesis(ws, noise_mode="random")
    rand2 = tiny_G.synthesis(ws, noise_mode="random")
    none = tiny_G.synthesis(ws, noise_mode="none")
    assert (rand1 - rand2).abs().max() > 1e-3
    assert (none - const1).abs().max() > 1e-3
    with torch.no_grad():
        for name, p in tiny_G.named_parameters():
            if name.endswith("noise_strength"):
                p.zero_()
    torch.testing.assert_close(tiny_G.synthesis(ws, noise_mode="const"), none, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="noise_mode"):
        tiny_G.synthesis(ws, noise_mode="bogus")


def test_truncation(tiny_G):
    z = torch.randn(4, tiny_G.z_dim)
    w1 = tiny_G.mapping(z)
    assert (w1 - w1[:, :1]).abs().max() == 0  # one w broadcast to every layer
    w0 = tiny_G.mapping(z, truncation_psi=0.0)
    torch.testing.assert_close(w0, tiny_G.w_avg.expand_as(w0))
    w7 = tiny_G.mapping(z, truncation_psi=0.7)
    torch.testing.assert_close(w7, tiny_G.w_avg + 0.7 * (w1 - tiny_G.w_avg))
    wc = tiny_G.mapping(z, truncation_psi=0.5, truncation_cutoff=3)
    torch.testing.assert_close(wc[:, 3:], w1[:, 3:])
    torch.testing.assert_close(wc[:, :3], tiny_G.w_avg + 0.5 * (w1[:, :3] - tiny_G.w_avg))


def test_mapping_matches_independent_numpy(tiny_G):
    """Equalised-lr MLP written out by hand in NumPy, from the paper's definitions."""
    z = torch.randn(3, tiny_G.z_dim, dtype=torch.float64)
    x = z.numpy()
    x = x / np.sqrt((x**2).mean(axis=1, keepdims=True) + 1e-8)
    lr = tiny_G.config.mapping_lr_mul
    for i in range(tiny_G.config.mapping_layers):
        fc = getattr(tiny_G.mapping, f"fc{i}")
        w = fc.weight.detach().double().numpy() * lr / np.sqrt(fc.weight.shape[1])
        b = fc.bias.detach().double().numpy() * lr
        x = x @ w.T + b
        x = np.where(x >= 0, x, 0.2 * x) * np.sqrt(2)
    got = tiny_G.mapping(z.float())[:, 0].detach().double().numpy()
    np.testing.assert_allclose(got, x, rtol=1e-4, atol=1e-5)


def test_batch_items_are_independent(tiny_G):
    ws = torch.randn(3, tiny_G.num_ws, tiny_G.w_dim)
    batch = tiny_G.synthesis(ws)
    single = tiny_G.synthesis(ws[1:2])
    torch.testing.assert_close(batch[1:2], single, atol=1e-5, rtol=1e-5)


def test_each_ws_entry_matters(tiny_G):
    """Every one of the num_ws entries must reach the image (W+ indexing is right)."""
    ws = torch.randn(1, tiny_G.num_ws, tiny_G.w_dim)
    base = tiny_G.synthesis(ws)
    for i in range(tiny_G.num_ws):
        moved = ws.clone()
        moved[:, i] += 1.0
        assert (tiny_G.synthesis(moved) - base).abs().max() > 1e-4, f"ws[:, {i}] unused"


def test_bad_ws_shape(tiny_G):
    with pytest.raises(ValueError, match="ws must be"):
        tiny_G.synthesis(torch.randn(2, tiny_G.num_ws + 1, tiny_G.w_dim))
    with pytest.raises(ValueError, match="z must be"):
        tiny_G.mapping(torch.randn(2, tiny_G.z_dim + 1))


def test_bad_config():
    with pytest.raises(ValueError, match="power of two"):
        GeneratorConfig(img_resolution=48, channels=(8,) * 4)
    with pytest.raises(ValueError, match="channels must list"):
        GeneratorConfig(img_resolution=32, channels=(8, 8))
    with pytest.raises(ValueError, match="unknown generator config keys"):
        GeneratorConfig.from_dict({"img_resolution": 8, "channels": [4, 4], "bogus": 1})


def test_fingerprint_tracks_weights(tiny_G):
    fp = tiny_G.fingerprint()
    assert len(fp) == 64
    other = tiny_generator(0)
    assert other.fingerprint() == fp
    other.load_state_dict(
        {k: v + 1e-3 if k == "synthesis.b4.const" else v for k, v in other.state_dict().items()}
    )
    assert other.fingerprint() != fp


def test_explicit_noise_inputs(tiny_G):
    ws = torch.randn(2, tiny_G.num_ws, tiny_G.w_dim)
    shapes = tiny_G.synthesis.noise_shapes()
    assert list(shapes)[:3] == ["b4.conv1", "b8.conv0", "b8.conv1"]
    assert len(shapes) == tiny_G.num_ws - 1  # one per conv layer
    # The stored maps passed explicitly reproduce noise_mode="const" exactly.
    const = {
        name: getattr(getattr(tiny_G.synthesis, name.split(".")[0]), name.split(".")[1]).noise_const
        for name in shapes
    }
    for impl in ("fast", "reference"):
        torch.testing.assert_close(
            tiny_G.synthesis(ws, noise=const, noise_mode="none", impl=impl),
            tiny_G.synthesis(ws, noise_mode="const", impl=impl),
        )
    # Per-image maps: image 1 with other noise changes, image 0 with the same noise does not.
    per_image = {k: torch.stack([v[None], torch.randn_like(v)[None]]) for k, v in const.items()}
    out = tiny_G.synthesis(ws, noise=per_image)
    base = tiny_G.synthesis(ws)
    torch.testing.assert_close(out[0], base[0])
    assert (out[1] - base[1]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="no noise input"):
        tiny_G.synthesis(ws, noise={"b4.conv0": torch.zeros(4, 4)})
