"""What every generator format shares: the strict build, FIR-filter checks, ``w_avg``."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from micromotion.errors import CheckpointError
from micromotion.networks.sampling import mapped_w
from micromotion.networks.stylegan2 import Generator, GeneratorConfig, _fir_kernel
from micromotion.weights.state import check_state_dict

#: How many mapped samples estimate ``w_avg`` when a checkpoint stores none.
W_AVG_SAMPLES = 10_000
W_AVG_SEED = 0


def build(config: GeneratorConfig, state: dict[str, torch.Tensor], path: Path) -> Generator:
    """Instantiate ``config`` and load ``state`` strictly, with a readable error."""
    G = Generator(config)
    check_state_dict(
        state, G.state_dict(), path, problem="does not match the inferred architecture"
    )
    G.load_state_dict({k: v.float() for k, v in state.items()})
    return G


def estimate_w_avg(
    G: Generator, *, num_samples: int = W_AVG_SAMPLES, seed: int = W_AVG_SEED, batch: int = 1000
) -> torch.Tensor:
    """Estimate the average ``w`` from ``num_samples`` mapped ``z ~ N(0, I)`` (fixed seed).

    Args:
        G: The generator (its mapping network is used).
        num_samples: Number of samples (≥ 10 000 is what truncation needs to be stable).
        seed: Seed of the CPU generator that draws ``z`` (device-independent).
        batch: Samples per mapping pass.

    Returns:
        ``[w_dim]`` mean of the mapped codes.
    """
    total = torch.zeros(G.w_dim, dtype=torch.float64, device=G.w_avg.device)
    for w in mapped_w(G, num_samples, seed=seed, batch=batch):
        total += w.double().sum(dim=0)
    return (total / num_samples).float()


def set_or_estimate_w_avg(G: Generator, w_avg: torch.Tensor | None, path: Path) -> None:
    """Use the checkpoint's average latent, or estimate it (with a warning) when it has none."""
    if w_avg is not None:
        G.mapping.w_avg.copy_(w_avg)
        G.source["w_avg"] = "checkpoint"
        return
    G.mapping.w_avg.copy_(estimate_w_avg(G))
    G.source["w_avg"] = f"estimated from {W_AVG_SAMPLES} samples, seed {W_AVG_SEED}"
    warnings.warn(
        f"{path}: the checkpoint stores no average latent; estimated w_avg from "
        f"{W_AVG_SAMPLES} mapped samples (seed {W_AVG_SEED})",
        stacklevel=4,
    )


def check_fir(name: str, value: torch.Tensor, gain: float, path: Path) -> None:
    """Fixed resampling filters are not parameters: only accept StyleGAN2's own."""
    expected = _fir_kernel() * gain
    if tuple(value.shape) != (4, 4) or not torch.allclose(value.float(), expected, atol=1e-6):
        raise CheckpointError(
            f"{path}: {name} is not StyleGAN2's [1, 3, 3, 1] resampling filter "
            "(unsupported architecture)"
        )
