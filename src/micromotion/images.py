"""Conversions between generator outputs and 8-bit images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from micromotion._io import atomic_path


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """Map generator output ``[N, C, H, W]`` in [-1, 1] to ``uint8`` ``[N, H, W, C]``."""
    x = (img.detach().float().clamp(-1, 1) + 1) * 127.5
    return x.round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def save_png(
    array: np.ndarray, path: str | os.PathLike[str], *, text: dict[str, str] | None = None
) -> Path:
    """Write an ``[H, W, C]`` uint8 array as PNG atomically, with optional text chunks."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    mode = "L" if array.shape[-1] == 1 else None
    image = Image.fromarray(array[..., 0] if mode else array, mode=mode)
    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", pnginfo=info)
    return path
