"""Conversions between generator outputs and 8-bit images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from micromotion.core.io import atomic_path


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


#: Largest image accepted, in pixels (100 MP: a 12000 × 8000 photo; about 300 MB decoded).
DEFAULT_MAX_PIXELS = 100_000_000
#: Environment variable that raises (or lowers) :data:`DEFAULT_MAX_PIXELS`.
MAX_PIXELS_ENV = "MICROMOTION_MAX_PIXELS"


def max_pixels() -> int:
    """The pixel limit for images: ``$MICROMOTION_MAX_PIXELS`` or :data:`DEFAULT_MAX_PIXELS`.

    Raises:
        MicromotionError: If the variable is set but not a positive whole number.
    """
    from micromotion.errors import MicromotionError

    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    if not text.isdigit() or int(text) < 1:
        raise MicromotionError(f"{MAX_PIXELS_ENV}={text!r}: must be a positive whole number")
    return int(text)


def _check_pixels(path: Path, width: int, height: int, most: int) -> None:
    from micromotion.errors import MicromotionError

    if width * height > most:
        raise MicromotionError(
            f"{path}: {width}x{height} is {width * height / 1e6:.0f} MP, over the limit of "
            f"{most / 1e6:g} MP (set {MAX_PIXELS_ENV} to allow larger images)"
        )


def read_rgb(path: str | os.PathLike[str], *, limit: int | None = None) -> np.ndarray:
    """Read any image file as upright 8-bit RGB ``[H, W, 3]``, whatever its mode.

    Handles RGBA and LA (composited on white), palette, grayscale, 16-bit, CMYK and EXIF
    orientation. The size is checked from the header before anything is decoded, so a
    small file that would expand to gigabytes (a decompression bomb) is refused cheaply.

    Args:
        path: The image file.
        limit: Most pixels accepted; default :func:`max_pixels` (100 MP, or
            ``$MICROMOTION_MAX_PIXELS``).

    Raises:
        MicromotionError: If the file is missing, not an image, or larger than the limit.
    """
    from PIL import ImageOps, UnidentifiedImageError

    from micromotion.errors import MicromotionError

    path = Path(path)
    most = max_pixels() if limit is None else limit
    img: Image.Image
    # Our check on the header replaces Pillow's own (a warning past 89 MP, an error past twice
    # that), which would ignore MICROMOTION_MAX_PIXELS; it is restored after this call.
    pillow_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(path) as img:
            _check_pixels(path, *img.size, most)  # before a single pixel is decoded
            img = ImageOps.exif_transpose(img)
            img.load()
    except FileNotFoundError:
        raise MicromotionError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise MicromotionError(f"{path}: is a directory, not an image") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise MicromotionError(f"{path}: not a readable image ({exc})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grayscale: scale to 8 bits by the type's range, not by clipping.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def from_uint8(array: np.ndarray) -> torch.Tensor:
    """Map ``uint8`` ``[H, W, 3]`` (or ``[N, H, W, 3]``) to float ``[.., 3, H, W]`` in [-1, 1]."""
    # A float copy: also for read-only arrays (aligned crops are frozen), which torch warns on.
    x = torch.from_numpy(np.array(array, dtype=np.float32)) / 127.5 - 1
    return x.movedim(-1, -3).contiguous()


def fit_square(
    array: np.ndarray, size: int, *, path: str | os.PathLike[str], hint: str
) -> np.ndarray:
    """Resize an aligned face crop ``uint8 [H, W, 3]`` to ``size × size`` (Lanczos).

    Raises:
        MicromotionError: Naming ``path``, if the crop is not square (within 1 %); ``hint``
            says what was expected.
    """
    from micromotion.errors import MicromotionError

    h, w = array.shape[:2]
    if abs(w - h) > max(1, 0.01 * max(w, h)):
        raise MicromotionError(f"{path}: {w}x{h} is not square; {hint}")
    if (h, w) != (size, size):
        array = np.asarray(Image.fromarray(array).resize((size, size), Image.Resampling.LANCZOS))
    return array


def load_image(path: str | os.PathLike[str], *, size: int | None = None) -> torch.Tensor:
    """Read an image as RGB ``[3, H, W]`` in [-1, 1], whatever its mode, upright per EXIF.

    See :func:`read_rgb` for the modes handled. With ``size``, the image must be square (an
    aligned face) and is resized to ``size × size`` with a Lanczos filter.

    Raises:
        MicromotionError: If the file is missing, not an image, or not square when ``size``
            is given.
    """
    arr = read_rgb(path)
    if size is not None:
        arr = fit_square(arr, size, path=path, hint="an aligned face crop is expected")
    return from_uint8(arr)


STRIP_HEIGHT = 128  # px per tile in a preview strip: enough to judge the motion, small on disk


def make_strip(images: np.ndarray, *, height: int = STRIP_HEIGHT) -> np.ndarray:
    """Tile ``uint8`` ``[k, H, W, 3]`` side by side, each resized to ``height`` px high."""
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"expected [k, H, W, 3] images, got {list(images.shape)}")
    _, h, w, _ = images.shape
    width = max(1, round(w * height / h))
    tiles = [
        np.asarray(Image.fromarray(img).resize((width, height), Image.Resampling.LANCZOS))
        if (h, w) != (height, width)
        else img
        for img in images
    ]
    return np.concatenate(tiles, axis=1)
