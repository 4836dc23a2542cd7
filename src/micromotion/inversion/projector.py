"""GAN inversion: find the W+ (or W) code that makes the generator reproduce an image.

An optimisation projector in the manner of StyleGAN2's (Karras et al. 2020, appendix D):
start from ``w_avg``, Adam with a learning-rate ramp-up and cosine ramp-down, Gaussian noise
on the latent that ramps down over the first part of the run, per-image noise maps optimised
alongside and kept decorrelated by a multi-scale autocorrelation penalty. Images of a batch
are optimised together but independently (losses are summed per image and Adam works
element-wise), so a batch gives the same codes as one image at a time.

The reconstruction loss is a perceptual one when one is supplied (``loss_fn``): LPIPS-VGG
(:mod:`micromotion.networks.lpips`), which :func:`micromotion.pipelines.losses.select_loss`
picks once its weights are in the zoo cache. Without it, a documented pixel loss is used: the
mean squared error at full resolution plus at every ×2 average-pooled scale down to 16 px,
which weighs coarse structure (pose, face shape) as much as fine detail.

Encoder initialisation (e4e / ReStyle) and video warm starts plug in through ``init_ws``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal, NamedTuple

import torch
from torch.nn import functional as F

from micromotion.core.numbers import check_real
from micromotion.errors import MicromotionError, ParameterError
from micromotion.networks.sampling import mapped_w
from micromotion.networks.stylegan2 import Generator

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class InversionConfig:
    """Settings of the projector; defaults follow StyleGAN2's ``projector.py``.

    Attributes:
        steps: Optimisation steps (StyleGAN2 uses 1000; 500 is enough for W+ in practice).
        space: ``"w+"`` (one code per layer, the paper's space) or ``"w"`` (one code).
        lr: Peak Adam learning rate (StyleGAN2: 0.1).
        lr_rampdown: Fraction of the run over which the rate falls to zero, cosine (0.25).
        lr_rampup: Fraction of the run over which the rate rises from zero (0.05).
        latent_noise: Initial latent noise, as a fraction of the spread of ``w`` (0.05).
        latent_noise_ramp: Fraction of the run over which that noise fades out, squared (0.75).
        noise_reg: Weight of the noise-map autocorrelation penalty (StyleGAN2: 1e5).
        optimize_noise: Optimise per-image noise maps, as StyleGAN2 does. Off by default:
            micromotion renders edits with the generator's stored noise
            (``noise_mode="const"``), so the code alone must reproduce the face; codes found
            this way also edit more cleanly.
        w_avg_samples: Samples that estimate the spread of ``w`` (StyleGAN2: 10 000).
        seed: Seed of the latent and noise-map initialisation.
        w_reg: Weight of a pull of each layer's code toward the image's mean code over the
            layers (:func:`w_spread`, added to the per-image loss; W+ only). 0 (off) keeps
            StyleGAN2's projector.
        clip_aware: Treat target pixels at the ends of the range (−1 or 1: 0 or 255 in an
            8-bit frame) as clipped: a reconstruction beyond such a pixel, on its side, costs
            nothing there (:func:`clip_aware_targets`). Off keeps StyleGAN2's projector.
    """

    steps: int = 500
    space: Literal["w+", "w"] = "w+"
    lr: float = 0.1
    lr_rampdown: float = 0.25
    lr_rampup: float = 0.05
    latent_noise: float = 0.05
    latent_noise_ramp: float = 0.75
    noise_reg: float = 1e5
    optimize_noise: bool = False
    w_avg_samples: int = 10_000
    seed: int = 0
    w_reg: float = 0.0
    clip_aware: bool = False

    def __post_init__(self) -> None:
        check_schedule(self.steps, self.lr, rampdown=self.lr_rampdown, rampup=self.lr_rampup)
        for name in ("latent_noise", "latent_noise_ramp", "noise_reg", "w_reg"):
            check_real(name, getattr(self, name), low=0)
        if self.space not in ("w+", "w"):
            raise ParameterError("space", f"{self.space!r}: choose w+ or w")

    def to_dict(self) -> dict[str, object]:
        """JSON-serialisable settings for provenance."""
        return asdict(self)


class InversionResult(NamedTuple):
    """What :func:`invert` returns.

    Attributes:
        ws: ``[N, num_ws, w_dim]`` the codes found.
        noise: Per-layer noise maps ``[N, 1, H, W]`` (empty if not optimised).
        images: ``[N, C, R, R]`` the reconstructions, on the CPU.
        psnr: ``[N]`` PSNR in dB of each reconstruction (images in [0, 1]).
        losses: Total loss after each step.
    """

    ws: torch.Tensor
    noise: dict[str, torch.Tensor]
    images: torch.Tensor
    psnr: torch.Tensor
    losses: list[float]


def multiscale_pixel_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image sum over scales of the MSE, full size down to 16 px: ``[N]``."""
    total = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
    while True:
        total = total + (x - y).square().mean(dim=[1, 2, 3])
        if x.shape[-1] <= 16:
            return total
        x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)


PIXEL_LOSS_NAME = "multiscale pixel MSE"


def lr_ramp(t: float, *, rampdown: float, rampup: float) -> float:
    """StyleGAN2's learning-rate factor at run fraction ``t`` in [0, 1).

    Linear ramp-up over the first ``rampup`` of the run, cosine ramp-down to zero over the
    last ``rampdown``; 1 in between. Also StyleCLIP's (and so the paper's) ``get_lr``.
    """
    ramp = min(1.0, (1 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return ramp * min(1.0, t / rampup) if rampup > 0 else ramp


def check_schedule(steps: int, lr: float, *, rampdown: float, rampup: float) -> None:
    """Refuse a learning-rate schedule that is out of range or would do nothing.

    Step ``i`` of ``steps`` runs at ``lr · lr_ramp(i / steps)``; with a ramp-up the first step
    has rate 0, so a one-step run returns its start code unchanged: that is refused rather than
    silently giving a zero edit.

    Raises:
        ParameterError: Naming the parameter (``steps``, ``lr``, ``lr_rampdown``, ``lr_rampup``).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ParameterError("steps", f"{steps}: must be at least 1")
    check_real("lr", lr, low=0, low_open=True)
    check_real("lr_rampdown", rampdown, low=0, high=1, low_open=True)
    check_real("lr_rampup", rampup, low=0, high=1)
    if steps == 1 and rampup > 0:
        raise ParameterError(
            "steps",
            "1: the learning rate ramps up from 0, so a single step changes nothing; "
            "use at least 2",
        )


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image of two ``[N, C, H, W]`` batches in [-1, 1] (mapped to [0, 1])."""
    a = (x.clamp(-1, 1) + 1) / 2
    b = (y.clamp(-1, 1) + 1) / 2
    mse = (a - b).square().mean(dim=[1, 2, 3]).clamp_min(1e-12)
    return 10 * torch.log10(1 / mse)


def _noise_regularisation(noise: dict[str, torch.Tensor]) -> torch.Tensor | float:
    """StyleGAN2's penalty on spatial autocorrelation at every scale, per image ``[N]``.

    Without noise maps there is nothing to penalise and the result is the float ``0.0``.
    """
    reg: torch.Tensor | float = 0.0
    for n in noise.values():  # [N, 1, H, W]
        while True:
            reg = reg + (n * torch.roll(n, 1, dims=3)).mean(dim=[1, 2, 3]).square()
            reg = reg + (n * torch.roll(n, 1, dims=2)).mean(dim=[1, 2, 3]).square()
            if n.shape[-1] <= 8:
                break
            n = F.avg_pool2d(n, 2)
    return reg


def clip_aware_targets(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``x`` with its pixels set to ``y``'s where ``y`` is clipped and ``x`` lies beyond it.

    A target pixel at exactly 1 (or −1) only says the true value is *at least* that bright (or
    dark): the rendered image is clamped, so a generator value beyond it looks the same. A
    plain loss still pulls such pixels back toward the clip; on generators whose raw output
    often overshoots [−1, 1] that pull dominates the loss and drags the code along directions
    the image does not show. The gradient is kept everywhere else, including where ``x`` is
    out of range but the target is not.
    """
    x = torch.where((y >= 1) & (x > y), y, x)
    return torch.where((y <= -1) & (x < y), y, x)


def w_spread(ws: torch.Tensor) -> torch.Tensor:
    """Per image, the mean squared deviation of the layers' codes from their mean: ``[N]``.

    Zero exactly when a ``[N, num_ws, w_dim]`` code lies in W (every layer the same).
    """
    return (ws - ws.mean(dim=1, keepdim=True)).square().mean(dim=[1, 2])


def _w_stats(G: Generator, samples: int, seed: int) -> tuple[torch.Tensor, float]:
    w = next(mapped_w(G, samples, seed=seed, batch=samples))  # [S, w_dim], one draw
    w_avg = w.mean(dim=0)
    w_std = float(((w - w_avg).square().sum() / samples).sqrt())
    return w_avg, w_std


def invert(
    G: Generator,
    images: torch.Tensor,
    *,
    config: InversionConfig | None = None,
    init_ws: torch.Tensor | None = None,
    loss_fn: LossFn | None = None,
    callback: Callable[[int, float], None] | None = None,
) -> InversionResult:
    """Project images into the generator's latent space.

    Args:
        G: The generator (frozen; its device is used).
        images: ``[N, C, R, R]`` in [-1, 1] at ``G.img_resolution`` (aligned faces).
        config: Projector settings (see :class:`InversionConfig`).
        init_ws: ``[N, num_ws, w_dim]`` start codes (an encoder's output, or the previous
            frame's code); default: ``w_avg`` for every image.
        loss_fn: Perceptual distance ``(x, y) -> [N]``; default: :func:`multiscale_pixel_loss`.
        callback: Called as ``callback(step, loss)`` after each step (progress bars).

    Returns:
        The codes, noise maps, reconstructions and their PSNR.
    """
    # Only the codes (and noise maps) are optimised: the generator's weights must not collect
    # gradients, which would also cost a full weight-gradient pass per step.
    flags = [p.requires_grad for p in G.parameters()]
    G.requires_grad_(False)
    try:
        return _invert(G, images, config or InversionConfig(), init_ws, loss_fn, callback)
    finally:
        for p, flag in zip(G.parameters(), flags, strict=True):
            p.requires_grad_(flag)


def _invert(
    G: Generator,
    images: torch.Tensor,
    config: InversionConfig,
    init_ws: torch.Tensor | None,
    loss_fn: LossFn | None,
    callback: Callable[[int, float], None] | None,
) -> InversionResult:
    device = G.w_avg.device
    R = G.img_resolution
    if images.ndim != 4 or images.shape[1:] != (G.img_channels, R, R):
        raise MicromotionError(
            f"images must be [N, {G.img_channels}, {R}, {R}], got {list(images.shape)}"
        )
    if not torch.isfinite(images).all():
        raise MicromotionError("images contain NaN or inf")
    n = images.shape[0]
    target = images.to(device=device, dtype=torch.float32)
    loss_fn = loss_fn or multiscale_pixel_loss
    w_avg, w_std = _w_stats(G, config.w_avg_samples, config.seed)

    num = 1 if config.space == "w" else G.num_ws
    if init_ws is not None:
        if init_ws.shape != (n, G.num_ws, G.w_dim):
            raise MicromotionError(
                f"init_ws must be [{n}, {G.num_ws}, {G.w_dim}], got {list(init_ws.shape)}"
            )
        start = init_ws.to(device=device, dtype=torch.float32)
        start = start.mean(dim=1, keepdim=True) if num == 1 else start
    else:
        start = w_avg.expand(n, num, -1)
    w_opt = start.detach().clone().requires_grad_(True)  # [N, num, w_dim]

    gen = torch.Generator().manual_seed(config.seed + 1)
    noise: dict[str, torch.Tensor] = {}
    if config.optimize_noise:
        for name, (h, w) in G.synthesis.noise_shapes().items():
            noise[name] = torch.randn(n, 1, h, w, generator=gen).to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([w_opt, *noise.values()], betas=(0.9, 0.999), lr=config.lr)

    losses: list[float] = []
    for step in range(config.steps):
        t = step / config.steps
        noise_scale = w_std * config.latent_noise * max(0.0, 1 - t / config.latent_noise_ramp) ** 2
        rate = config.lr * lr_ramp(t, rampdown=config.lr_rampdown, rampup=config.lr_rampup)
        for group in optimizer.param_groups:
            group["lr"] = rate

        w_noise = torch.randn(w_opt.shape, generator=gen).to(device) * noise_scale
        ws = (w_opt + w_noise).expand(n, G.num_ws, -1)
        synth = G.synthesis(ws, noise=noise or None, noise_mode="const")
        if config.clip_aware:
            synth = clip_aware_targets(synth, target)
        per_image = loss_fn(synth, target)  # [N]
        if noise:
            per_image = per_image + config.noise_reg * _noise_regularisation(noise)
        if config.w_reg > 0 and num > 1:
            per_image = per_image + config.w_reg * w_spread(w_opt)
        loss = per_image.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # keep noise maps zero-mean, unit-variance, as StyleGAN2 does
            for buf in noise.values():
                buf -= buf.mean(dim=[1, 2, 3], keepdim=True)
                buf *= buf.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        losses.append(loss.item() / n)
        if callback is not None:
            callback(step + 1, losses[-1])

    with torch.no_grad():
        ws = w_opt.detach().expand(n, G.num_ws, -1).clone()
        final_noise = {k: v.detach().clone() for k, v in noise.items()}
        recon = G.synthesis(ws, noise=final_noise or None, noise_mode="const")
        quality = psnr(recon, target).cpu()
    return InversionResult(
        ws.cpu(), {k: v.cpu() for k, v in final_noise.items()}, recon.cpu(), quality, losses
    )
