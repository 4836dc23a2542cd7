"""Sample faces from a generator: seeds → W+ codes → images, batched."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from micromotion.networks.stylegan2 import Generator, NoiseMode
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


def render(
    G: Generator,
    ws: torch.Tensor,
    *,
    noise_mode: NoiseMode = "const",
    batch_size: int = 4,
    callback: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Render W+ codes ``[N, num_ws, w_dim]`` to images ``[N, C, R, R]`` in batches (on CPU).

    Args:
        G: The generator.
        ws: W+ codes, on any device.
        noise_mode: See :meth:`SynthesisNetwork.forward`.
        batch_size: Images per synthesis pass.
        callback: Called with the number of images finished after each batch (progress bars).
    """
    device = G.w_avg.device
    out = []
    with torch.inference_mode():
        for start in range(0, ws.shape[0], batch_size):
            batch = ws[start : start + batch_size].to(device)
            out.append(G.synthesis(batch, noise_mode=noise_mode).float().cpu())
            if callback is not None:
                callback(batch.shape[0])
    return (
        torch.cat(out)
        if out
        else torch.empty(0, G.img_channels, G.img_resolution, G.img_resolution)
    )
