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

    Raises:
        MicromotionError: When an edit is zero on the layers it moves (nothing would move: an
            all-zero direction, or a layer choice where it is zero).
        ParameterError: ``strengths``, when the edited codes overflow float32.
    """
    if frames < 2:
        raise ParameterError("frames", f"{frames}: need at least 2 frames")
    if not edits:
        raise MicromotionError("no micromotion to apply")
    if w.ndim == 3 and w.shape[0] == 1:
        w = w[0]
    total = torch.zeros_like(w)
    for mm, strength in edits:
        if not bool(mm.masked_direction.any()):
            where = "" if bool(mm.mask.all()) else f" on layers {mm.metadata.get('layers')}"
            raise MicromotionError(
                f"micromotion {mm.name!r}: its direction is zero{where}; nothing would move"
            )
        total = mm.edit(total, strength)  # masked s·d, shape-checked against w
    t = torch.linspace(0, 1, frames, dtype=w.dtype, device=w.device)[:, None, None]
    codes = w.unsqueeze(0) + t * total.unsqueeze(0)  # [frames, num_ws, w_dim]
    if not torch.isfinite(codes).all():
        raise ParameterError(
            "strengths",
            f"{', '.join(f'{s:g}' for _, s in edits)}: the edited codes overflow float32; "
            "use a smaller strength",
        )
    return codes


def loop_indices(frames: int, loop: str) -> list[int]:
    """Frame order for a clip of ``frames`` renders: ``none`` or ``pingpong`` (there and back)."""
    forward = list(range(frames))
    if loop == "none":
        return forward
    if loop == "pingpong":
        return forward + forward[-2:0:-1]
    raise ParameterError("loop", f"{loop!r}: choose none or pingpong")
