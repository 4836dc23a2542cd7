"""Step 3 — the codes of a clip: ``w + t·Σ s·d`` for ``t`` from 0 to 1, and frame orders."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from micromotion.errors import MicromotionError, ParameterError
from micromotion.subspace.micromotion import Micromotion


def clip_codes(
    w: torch.Tensor,
    edits: Sequence[tuple[Micromotion, float]],
    *,
    frames: int = 100,
) -> torch.Tensor:
    """Return the codes of a clip: frame ``i`` is ``w + (i / (frames − 1)) · Σ sₖ·dₖ``.

    Args:
        w: ``[num_ws, w_dim]`` the start code.
        edits: ``(micromotion, strength)`` pairs; their masked directions add up.
        frames: Number of frames (≥ 2); the last frame reaches the full strength.

    Returns:
        ``[frames, num_ws, w_dim]``.
    """
    if frames < 2:
        raise ParameterError("frames", f"{frames}: need at least 2 frames")
    if not edits:
        raise MicromotionError("no micromotion to apply")
    if w.ndim == 3 and w.shape[0] == 1:
        w = w[0]
    total = torch.zeros_like(w)
    for mm, strength in edits:
        total = mm.edit(total, strength)  # masked s·d, shape-checked against w
    t = torch.linspace(0, 1, frames, dtype=w.dtype, device=w.device)[:, None, None]
    return w.unsqueeze(0) + t * total.unsqueeze(0)


def loop_indices(frames: int, loop: str) -> list[int]:
    """Frame order for a clip of ``frames`` renders: ``none`` or ``pingpong`` (there and back)."""
    forward = list(range(frames))
    if loop == "none":
        return forward
    if loop == "pingpong":
        return forward + forward[-2:0:-1]
    raise ParameterError("loop", f"{loop!r}: choose none or pingpong")
