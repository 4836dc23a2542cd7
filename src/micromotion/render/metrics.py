"""How a rendered clip behaves: smoothness between consecutive frames, identity along it.

Pure functions over float frames ``[T, 3, R, R]`` in ``[-1, 1]`` (what the generator renders,
clamped); the networks (LPIPS, IR-SE50) are passed in, never loaded here.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from micromotion.errors import MicromotionError
from micromotion.networks.irse import IdentityLoss

#: ``distance(x, y) -> [N]`` between image batches ``[N, 3, R, R]`` in [-1, 1] (LPIPS).
Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_frames(frames: torch.Tensor) -> None:
    if frames.ndim != 4 or frames.shape[0] < 2:
        raise MicromotionError(f"a clip must be [T ≥ 2, C, H, W] frames, got {list(frames.shape)}")
    if not torch.isfinite(frames).all():
        raise MicromotionError("the frames contain NaN or inf")


def frame_distances(frames: torch.Tensor, *, distance: Distance | None = None) -> torch.Tensor:
    """Distance between each pair of consecutive frames: ``[T − 1]`` float64.

    Args:
        frames: ``[T, 3, R, R]`` in ``[-1, 1]``.
        distance: A perceptual distance such as LPIPS; default the pixel RMSE on the
            ``[0, 1]`` scale (0 for equal frames, 1 for black against white).
    """
    _check_frames(frames)
    a, b = frames[:-1], frames[1:]  # [T − 1, 3, R, R] each
    if distance is None:
        # RMSE of (x + 1)/2: half the RMSE in [-1, 1].
        out = 0.5 * (a - b).double().square().flatten(1).mean(dim=1).sqrt()
    else:
        out = distance(a, b).detach().double().reshape(-1)
    if not torch.isfinite(out).all():
        raise MicromotionError("a frame distance is NaN or inf")
    return out


def spread(values: torch.Tensor) -> dict[str, float]:
    """Mean, standard deviation, minimum, maximum of ``values``, and ``std / mean`` (``cv``).

    For frame distances, a smooth clip has a small, even step: a low ``cv`` and a ``max``
    close to the ``mean`` (a jump shows as one large ``max``). ``cv`` is 0 when every step is 0.
    """
    v = values.double().reshape(-1)
    if v.numel() == 0:
        raise MicromotionError("no values to summarise")
    mean = float(v.mean())
    std = float(v.std(unbiased=False))
    return {
        "mean": mean,
        "std": std,
        "min": float(v.min()),
        "max": float(v.max()),
        "cv": std / mean if mean > 0 else 0.0,
    }


def identity_similarity(id_model: IdentityLoss, frames: torch.Tensor) -> torch.Tensor:
    """ArcFace (IR-SE50) cosine of each frame to frame 0: ``[T]`` float64, ``1`` at frame 0.

    Args:
        id_model: The identity model (frozen).
        frames: ``[T, 3, R, R]`` in ``[-1, 1]``.
    """
    _check_frames(frames)
    with torch.no_grad():
        emb = id_model.embed(frames).double()  # [T, D], unit norm
    return (emb * emb[:1]).sum(dim=1).clamp(-1, 1)


__all__ = ["Distance", "frame_distances", "identity_similarity", "spread"]
