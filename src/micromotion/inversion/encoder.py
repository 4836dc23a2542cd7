"""Encoder inversion as each method defines it: ReStyle's iterations, e4e's and pSp's one pass.

Input: FFHQ-aligned faces at 256 px in [-1, 1] (``[N, 3, 256, 256]``).

* **ReStyle** (Alaluf et al., ICCV 2021) starts from the average image — ``latent_avg``
  rendered and average-pooled to 256 px — and at each iteration feeds ``[image, current
  reconstruction]`` (6 channels; the reconstruction pooled to 256 px, not clamped), adds the
  encoder's output to the current code (to ``latent_avg`` at the first iteration), and renders
  the new code. Every iterate is returned.
* **e4e and pSp** add the encoder's output to ``latent_avg`` in one pass.

The generator renders with its stored noise (``noise_mode="const"``, the methods'
``randomize_noise=False``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import NamedTuple

import torch
from torch.nn import functional as F

from micromotion.errors import MicromotionError, ParameterError
from micromotion.inversion.projector import psnr
from micromotion.networks.encoders import INPUT_SIZE, EncoderModel
from micromotion.networks.stylegan2 import Generator

#: ReStyle's default number of iterations (the paper's inverter: ReStyle-pSp, 5).
DEFAULT_ITERATIONS = 5


class EncoderInversion(NamedTuple):
    """What :func:`encode` returns.

    Attributes:
        ws: ``[N, num_ws, w_dim]`` the final codes.
        iterates: Codes after each iteration (one for e4e/pSp), ``[N, num_ws, w_dim]`` each.
        images: Renders of each iterate, pooled to 256 px, ``[N, 3, 256, 256]`` each.
        final: ``[N, 3, R, R]`` the full-resolution render of the final codes, on the CPU.
        psnr: With ``targets``: ``[N]`` PSNR of each iterate's full-resolution render.
    """

    ws: torch.Tensor
    iterates: list[torch.Tensor]
    images: list[torch.Tensor]
    final: torch.Tensor
    psnr: list[torch.Tensor]


def to_encoder_input(images: torch.Tensor) -> torch.Tensor:
    """Aligned faces ``[B, 3, R, R]`` at the encoders' 256 px (area averaging when larger)."""
    if images.shape[-1] == INPUT_SIZE:
        return images
    mode = "area" if images.shape[-1] > INPUT_SIZE else "bilinear"
    return F.interpolate(images, size=(INPUT_SIZE, INPUT_SIZE), mode=mode)


def _pool(images: torch.Tensor) -> torch.Tensor:
    return F.adaptive_avg_pool2d(images, (INPUT_SIZE, INPUT_SIZE))


def average_image(G: Generator, model: EncoderModel) -> torch.Tensor:
    """ReStyle's start: ``latent_avg`` rendered and pooled to 256 px, ``[1, 3, 256, 256]``."""
    return _pool(G.synthesis(model.latent_avg[None], noise_mode="const"))


@torch.no_grad()
def encode(
    G: Generator,
    model: EncoderModel,
    images: torch.Tensor,
    *,
    iterations: int = DEFAULT_ITERATIONS,
    targets: torch.Tensor | None = None,
    check_generator: bool = True,
) -> EncoderInversion:
    """Invert aligned faces with an encoder.

    Args:
        G: The generator the encoder was trained with (its ``decoder.*``).
        model: From :func:`micromotion.weights.encoders.load_encoder`.
        images: ``[N, 3, 256, 256]`` in [-1, 1].
        iterations: ReStyle iterations (ignored by e4e and pSp, which run once).
        targets: ``[N, 3, R, R]`` faces at the generator's resolution: each iterate's PSNR
            against them is measured on the render the loop makes anyway.
        check_generator: Warn when ``G`` is not the encoder's own network (its fingerprint
            is hashed over every weight: a caller that encodes many batches with the same
            pair checks the first one only).

    Raises:
        ParameterError: ``iterations`` below 1.
        MicromotionError: An encoder for another generator size, or images of the wrong shape.
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ParameterError("iterations", f"{iterations}: must be at least 1")
    if model.n_styles != G.num_ws or G.w_dim != model.latent_avg.shape[1]:
        raise MicromotionError(
            f"the encoder predicts W+ [{model.n_styles}, {model.latent_avg.shape[1]}] but the "
            f"generator has [{G.num_ws}, {G.w_dim}]: it was trained for another network size"
        )
    if images.ndim != 4 or tuple(images.shape[1:]) != (3, INPUT_SIZE, INPUT_SIZE):
        raise MicromotionError(f"encoders take [N, 3, 256, 256] faces, got {list(images.shape)}")
    if check_generator:
        _warn_if_not_its_generator(G, model)
    device = model.latent_avg.device
    x = images.to(device=device, dtype=torch.float32)
    avg = model.latent_avg[None].expand(x.shape[0], -1, -1)  # [N, num_ws, w_dim]
    iterates: list[torch.Tensor] = []
    renders: list[torch.Tensor] = []
    quality: list[torch.Tensor] = []
    full = torch.empty(0)

    def render(codes: torch.Tensor) -> torch.Tensor:
        nonlocal full
        full = G.synthesis(codes, noise_mode="const")  # [N, 3, R, R]
        if targets is not None:
            quality.append(psnr(full.cpu(), targets.cpu()))
        iterates.append(codes)
        renders.append(_pool(full))
        return renders[-1]

    if not model.iterative:
        codes = model.encoder(x)
        if model.opts.get("start_from_latent_avg", True):
            codes = codes + avg
        render(codes)
        return EncoderInversion(codes, iterates, renders, full.cpu(), quality)
    current = average_image(G, model).expand(x.shape[0], -1, -1, -1)
    codes = avg
    for _ in range(iterations):
        codes = model.encoder(torch.cat([x, current], dim=1)) + codes
        current = render(codes)  # pooled, not clamped, as ReStyle feeds it back
    return EncoderInversion(codes, iterates, renders, full.cpu(), quality)


__all__ = ["DEFAULT_ITERATIONS", "EncoderInversion", "average_image", "encode", "to_encoder_input"]


def _warn_if_not_its_generator(G: Generator, model: EncoderModel) -> None:
    """Warn when ``G`` is not the network the encoder was trained with (its ``decoder.*``).

    A code means something only in its own generator's W+ space: an encoder trained for
    another network (another training run, or the same architecture retrained) gives codes
    that render another face. Same-size networks pass the shape check, so the fingerprints
    are compared; the fingerprint is the same from every file format.
    """
    expected = model.source.get("decoder_fingerprint")
    if expected is None:
        return
    actual = G.fingerprint()
    if actual != expected:
        warnings.warn(
            f"the encoder {Path(str(model.source.get('file', ''))).name} was trained with "
            f"another generator (fingerprint {expected[:12]}…, this one {actual[:12]}…): its "
            "codes may not fit this network; use the encoder's own generator "
            "(--generator ENCODER.pt) or --inverter projector",
            stacklevel=3,
        )
