"""Which reconstruction loss an inversion uses: LPIPS-VGG when its weights are cached."""

from __future__ import annotations

import warnings

import torch

from micromotion.inversion import PIXEL_LOSS_NAME, LossFn, multiscale_pixel_loss
from micromotion.networks.lpips import perceptual_loss
from micromotion.pipelines._load import cached
from micromotion.weights.lpips import load_lpips, lpips_available

LPIPS_LOSS_NAME = "LPIPS-VGG v0.1 (256 px)"


def select_loss(
    *, device: torch.device | str = "cpu", lpips: bool | None = None
) -> tuple[LossFn, str]:
    """The inversion loss to use and its name (for provenance).

    Args:
        device: Where LPIPS runs.
        lpips: ``True`` requires LPIPS-VGG (downloaded through the zoo if need be),
            ``False`` uses the pixel loss, ``None`` uses LPIPS when its weights are already
            cached and otherwise the pixel loss with a warning saying how to get LPIPS.

    Returns:
        ``(loss_fn, name)``.
    """
    if lpips is None:
        lpips = lpips_available()
        if not lpips:
            warnings.warn(
                "LPIPS-VGG weights are not in the cache, inverting with the multiscale pixel "
                "loss (blurrier); run `micromotion zoo download vgg16-imagenet "
                "lpips-vgg-v0.1` once to use LPIPS",
                stacklevel=2,
            )
    if not lpips:
        return multiscale_pixel_loss, PIXEL_LOSS_NAME
    model = cached("lpips", "lpips", device, lambda: load_lpips(device=device))
    return perceptual_loss(model), LPIPS_LOSS_NAME
