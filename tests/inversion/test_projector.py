"""GAN inversion on tiny generators: images made from known codes are reproduced."""

from __future__ import annotations

import time

import pytest
import torch

from helpers import tiny_generator
from micromotion import MicromotionError
from micromotion.inversion import InversionConfig, invert, multiscale_pixel_loss, psnr


@pytest.fixture(scope="module")
def G16():
    return tiny_generator(7, img_resolution=16, channels=(12, 12, 8), z_dim=8, w_dim=8)


@pytest.fixture(scope="module")
def targets(G16):
    g = torch.Generator().manual_seed(3)
    ws = G16.mapping(torch.randn(2, G16.z_dim, generator=g), truncation_psi=0.7).detach()
    ws = ws + 0.2 * torch.randn(ws.shape, generator=g)  # per-layer variety, as real W+ codes
    with torch.no_grad():
        return ws, G16.synthesis(ws)


def test_w_plus_inversion_reaches_30_db(G16, targets):
    ws_true, images = targets
    start = time.perf_counter()
    steps = []
    result = invert(
        G16,
        images,
        config=InversionConfig(steps=300, w_avg_samples=2000),
        callback=lambda step, loss: steps.append((step, loss)),
    )
    seconds = time.perf_counter() - start
    assert result.psnr.min() >= 30, (result.psnr, f"300 steps, {seconds:.1f} s")
    assert result.ws.shape == ws_true.shape
    assert len(steps) == 300 and steps[-1][1] < steps[0][1] / 10
    # The reported reconstruction is what the code renders with the stored noise.
    with torch.no_grad():
        again = G16.synthesis(result.ws)
    torch.testing.assert_close(again, result.images, atol=1e-5, rtol=0)
    # The generator was frozen during the run and left as it was.
    assert all(p.requires_grad for p in G16.parameters())
    assert all(p.grad is None for p in G16.parameters())


def test_batch_equals_one_at_a_time(G16, targets):
    _, images = targets
    cfg = InversionConfig(steps=20, w_avg_samples=500)
    both = invert(G16, images, config=cfg)
    first = invert(G16, images[:1], config=cfg)
    # Same maths; the latent noise draws differ with the batch size, so compare loosely
    # against a clearly different code.
    assert (both.ws[0] - first.ws[0]).abs().max() < (both.ws[0] - both.ws[1]).abs().max()


def test_w_space_and_warm_start(G16, targets):
    ws_true, images = targets
    res = invert(G16, images, config=InversionConfig(steps=30, space="w", w_avg_samples=500))
    assert (res.ws - res.ws[:, :1]).abs().max() == 0  # one code broadcast to all layers
    warm = invert(G16, images, init_ws=ws_true, config=InversionConfig(steps=5, lr=0.01))
    assert warm.psnr.min() > 30  # starting at the answer stays there


def test_noise_optimisation_option(G16, targets):
    _, images = targets
    res = invert(
        G16, images[:1], config=InversionConfig(steps=10, optimize_noise=True, w_avg_samples=500)
    )
    assert set(res.noise) == set(G16.synthesis.noise_shapes())
    for n in res.noise.values():
        assert n.shape[0] == 1 and abs(n.mean()) < 1e-4 and abs(n.square().mean() - 1) < 1e-3
    with torch.no_grad():
        again = G16.synthesis(res.ws, noise=res.noise)
    torch.testing.assert_close(again, res.images, atol=1e-5, rtol=0)


def test_losses_and_psnr():
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert torch.all(multiscale_pixel_loss(x, x) == 0)
    y = x.clone()
    y[1] += 0.1
    loss = multiscale_pixel_loss(x, y)
    assert loss[0] == 0 and loss[1] == pytest.approx(0.01 * 3, rel=1e-4)  # 64, 32, 16 px
    assert psnr(x, x.clone())[0] > 100
    assert psnr(torch.full((1, 3, 4, 4), -1.0), torch.full((1, 3, 4, 4), 1.0))[0] == pytest.approx(
        0
    )


def test_bad_inputs(G16):
    with pytest.raises(MicromotionError, match=r"images must be \[N, 3, 16, 16\]"):
        invert(G16, torch.zeros(1, 3, 32, 32))
    with pytest.raises(MicromotionError, match="NaN"):
        invert(G16, torch.full((1, 3, 16, 16), float("nan")))
    with pytest.raises(MicromotionError, match="steps 0"):
        InversionConfig(steps=0)
    with pytest.raises(MicromotionError, match="init_ws must be"):
        invert(G16, torch.zeros(1, 3, 16, 16), init_ws=torch.zeros(1, 2, 8))


def test_clip_aware_targets_ignore_only_overshoot_past_a_clipped_pixel():
    from micromotion.inversion.projector import clip_aware_targets

    y = torch.tensor([1.0, 1.0, -1.0, -1.0, 0.5, 0.5])
    x = torch.tensor([1.7, 0.2, -3.0, 0.4, 2.0, 0.1], requires_grad=True)
    out = clip_aware_targets(x, y)
    # Beyond a clipped target on its side: no cost. Short of it, or an unclipped target: kept.
    assert out.tolist() == pytest.approx([1.0, 0.2, -1.0, 0.4, 2.0, 0.1])
    (out - y).square().sum().backward()
    assert x.grad is not None and (x.grad[[0, 2]] == 0).all() and (x.grad[[1, 3, 4, 5]] != 0).all()


def test_w_reg_pulls_layers_together_and_defaults_stay_stylegan2s(G16, targets):
    from micromotion.inversion.projector import w_spread

    config = InversionConfig()
    assert config.w_reg == 0 and not config.clip_aware  # `invert` keeps StyleGAN2's projector
    ws_true, images = targets
    assert w_spread(ws_true[:, :1].expand_as(ws_true)).max() < 1e-12  # zero in W
    free = invert(G16, images, config=InversionConfig(steps=60, w_avg_samples=500))
    pulled = invert(G16, images, config=InversionConfig(steps=60, w_avg_samples=500, w_reg=10))
    assert (w_spread(pulled.ws) < 0.5 * w_spread(free.ws)).all()
    with pytest.raises(MicromotionError, match="w_reg"):
        InversionConfig(w_reg=-1)
