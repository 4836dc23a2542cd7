"""Layer selections: ``"0-3,8"`` ↔ a ``[num_ws]`` boolean mask."""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence

import torch

from micromotion.errors import MicromotionError

_ITEM = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def layer_mask(spec: str | Sequence[int], num_ws: int) -> torch.Tensor:
    """Parse a layer selection into a ``[num_ws]`` bool mask.

    Args:
        spec: Layers as text, ``"0-7"`` or ``"0-3,8,10-11"`` (inclusive ranges, the
            notation NVIDIA's tools use for seeds), or a sequence of layer indices.
        num_ws: Number of W+ entries (18 for a 1024 px StyleGAN2).

    Returns:
        ``[num_ws]`` bool tensor, true for selected layers.

    Raises:
        MicromotionError: On malformed text, an index outside ``0 … num_ws−1``, or an empty
            selection.
    """
    if isinstance(num_ws, bool) or not isinstance(num_ws, int) or num_ws < 1:
        raise MicromotionError(f"num_ws must be a positive integer, got {num_ws!r}")
    indices: list[int] = []
    if isinstance(spec, str):
        for part in spec.split(","):
            match = _ITEM.match(part)
            if match is None:
                raise MicromotionError(
                    f"layers {spec!r}: {part.strip()!r} is not a layer or a range like 0-7"
                )
            lo = int(match.group(1))
            hi = int(match.group(2)) if match.group(2) is not None else lo
            if hi < lo:
                raise MicromotionError(f"layers {spec!r}: range {part.strip()!r} runs backwards")
            if hi >= num_ws:
                raise MicromotionError(f"layers {spec!r}: layer {hi} out of range (0-{num_ws - 1})")
            indices.extend(range(lo, hi + 1))
    else:
        for item in spec:
            try:
                if isinstance(item, bool):
                    raise TypeError
                indices.append(operator.index(item))  # int, numpy or 0-d torch integers
            except TypeError:
                raise MicromotionError(f"layers must be integers, got {item!r}") from None
    if not indices:
        raise MicromotionError("the layer selection is empty")
    bad = sorted({i for i in indices if not 0 <= i < num_ws})
    if bad:
        raise MicromotionError(f"layers {bad} out of range: this network has layers 0-{num_ws - 1}")
    mask = torch.zeros(num_ws, dtype=torch.bool)
    mask[indices] = True
    return mask


def layers_text(mask: torch.Tensor) -> str:
    """A layer mask as text: ``[T, T, F, T]`` → ``"0-1,3"`` (the inverse of :func:`layer_mask`)."""
    idx = [i for i, m in enumerate(mask.tolist()) if m]
    if not idx:
        return ""
    parts, start = [], None
    for i, j in zip(idx, [*idx[1:], None], strict=True):
        start = i if start is None else start
        if j != i + 1:
            parts.append(f"{start}-{i}" if i > start else f"{i}")
            start = None
    return ",".join(parts)
