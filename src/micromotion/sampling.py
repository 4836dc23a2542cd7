"""Sample faces from a generator: seeds → W+ codes, the same on any device."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from micromotion.networks.stylegan2 import Generator
from micromotion.seeds import z_from_seed


def sample_ws(G: Generator, seeds: Sequence[int], *, truncation_psi: float = 0.7) -> torch.Tensor:
    """Map one ``z`` per seed to W+ codes ``[N, num_ws, w_dim]`` on ``G``'s device.

    Args:
        G: The generator.
        seeds: Seeds; each draws its ``z`` on the CPU so results do not depend on the device.
        truncation_psi: Truncation toward ``G.w_avg`` (0.7: the paper's start faces).
    """
    device = G.w_avg.device
    z = torch.stack([z_from_seed(s, G.z_dim) for s in seeds]).to(device)  # [N, z_dim]
    with torch.no_grad():
        return G.mapping(z, truncation_psi=truncation_psi)
