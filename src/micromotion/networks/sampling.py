"""The one ``w`` sampler: seeds or a seeded stream of ``z`` → mapped codes, the same on any device.

``z`` is always drawn on the CPU (a seed gives the same face on a GPU), then moved to the
generator's device and mapped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from micromotion.networks.stylegan2 import Generator


def z_from_seed(seed: int, z_dim: int) -> torch.Tensor:
    """Draw ``z`` ``[z_dim]`` from a CPU generator, so a seed gives the same face on any device."""
    return torch.randn(z_dim, generator=torch.Generator().manual_seed(seed))


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


def mapped_w(G: Generator, num_samples: int, *, seed: int, batch: int) -> Iterator[torch.Tensor]:
    """Yield untruncated ``w`` ``[B, w_dim]`` for ``num_samples`` draws of ``z ~ N(0, I)``.

    The draws come from one CPU generator seeded with ``seed``, ``batch`` at a time, so a
    caller's statistics (the average ``w``, the spread of ``w``) depend only on these three
    numbers.
    """
    gen = torch.Generator().manual_seed(seed)
    device = G.w_avg.device
    done = 0
    with torch.no_grad():
        while done < num_samples:
            n = min(batch, num_samples - done)
            z = torch.randn(n, G.z_dim, generator=gen).to(device)  # [n, z_dim]
            yield G.mapping(z)[:, 0]  # [n, w_dim]: W, not W+ (every row is the same)
            done += n
