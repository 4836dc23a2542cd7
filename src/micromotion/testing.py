"""Tiny, fully randomised networks for tests — ours and downstream users'.

Real weights (FFHQ StyleGAN2 and friends) are hundreds of megabytes and cannot be part of a
test suite; these builders make generators of a few thousand parameters in milliseconds,
with *every* parameter and stored buffer random, so loaders, editing and rendering are
exercised on values that could be wrong (a fresh network's zero biases and zero ``w_avg``
hide mistakes).

Example:
    >>> from micromotion.testing import tiny_generator
    >>> G = tiny_generator(seed=0)          # 32 px, w_dim 10, 8 W+ entries
    >>> G.synthesis(G.mapping(torch.randn(2, G.z_dim))).shape
    torch.Size([2, 3, 32, 32])
"""

from __future__ import annotations

from typing import Any

import torch

from micromotion.networks.stylegan2 import Generator, GeneratorConfig

__all__ = ["randomise", "tiny_config", "tiny_generator"]


def randomise(G: Generator, seed: int = 0) -> Generator:
    """Give every parameter and stored buffer of ``G`` a random value, in place; eval mode.

    Biases and noise strengths start at zero and ``w_avg`` at zero in a fresh network, which
    would hide mistakes in how they are loaded or applied. Affine biases are shifted by +1 to
    keep styles away from zero, as trained networks have them.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in G.named_parameters():
            scale = 0.5 if "bias" in name or "noise_strength" in name else 1.0
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
            if name.endswith("affine.bias"):
                p.add_(1.0)
        for name, b in G.named_buffers():
            if name.endswith(("noise_const", "w_avg")):
                b.copy_(torch.randn(b.shape, generator=gen))
    return G.eval()


def tiny_config(**overrides: Any) -> GeneratorConfig:
    """A 32 px generator config with a few channels: fast on CPU, exercises every block type.

    Args:
        **overrides: Any :class:`~micromotion.networks.stylegan2.GeneratorConfig` field.
    """
    kwargs: dict[str, Any] = dict(
        img_resolution=32,
        channels=(16, 16, 12, 8),
        z_dim=12,
        w_dim=10,
        mapping_layers=2,
    )
    kwargs.update(overrides)
    return GeneratorConfig(**kwargs)


def tiny_generator(seed: int = 0, **overrides: Any) -> Generator:
    """A fully randomised tiny generator (see :func:`tiny_config` for the overrides)."""
    torch.manual_seed(seed)
    return randomise(Generator(tiny_config(**overrides)), seed)
