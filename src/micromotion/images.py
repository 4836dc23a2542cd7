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


def load_image(path: str | os.PathLike[str], *, size: int | None = None) -> torch.Tensor:
    """Read an image as RGB ``[3, H, W]`` in [-1, 1], whatever its mode, upright per EXIF.

    Handles RGBA and LA (composited on white), palette, grayscale, 16-bit, CMYK and EXIF
    orientation. With ``size``, the image must be square (an aligned face) and is resized to
    ``size × size`` with a Lanczos filter.

    Raises:
        MicromotionError: If the file is missing, not an image, or not square when ``size``
            is given.
    """
    from PIL import ImageOps, UnidentifiedImageError

    from micromotion.errors import MicromotionError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            img.load()
    except FileNotFoundError:
        raise MicromotionError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise MicromotionError(f"{path}: not a readable image ({exc})") from None
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grayscale: scale to 8 bits by the type's range, not by clipping.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    img = img.convert("RGB")
    if size is not None:
        w, h = img.size
        if abs(w - h) > max(1, 0.01 * max(w, h)):
            raise MicromotionError(
                f"{path}: {w}x{h} is not square; an aligned face crop is expected"
            )
        if (w, h) != (size, size):
            img = img.resize((size, size), Image.LANCZOS)
    arr = np.asarray(img, dtype=np.float32) / 127.5 - 1  # [H, W, 3]
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()
