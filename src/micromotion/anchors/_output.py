"""What ``discover text`` and ``discover video`` write: one set of files, all or nothing.

For ``-o NAME.safetensors``: the micromotion file itself, ``NAME_anchors.npy`` (the anchor
codes ``[n, num_ws, w_dim]``), ``NAME_strip.png`` (the anchors side by side, with the record
embedded) and ``NAME.json`` (the provenance record). Everything is written to temporary files
first and only renamed into place once every file is complete.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from micromotion._io import atomic_path
from micromotion.direction import Micromotion
from micromotion.errors import MicromotionError

STRIP_HEIGHT = 128  # px per tile in the preview strip: enough to judge the motion, small on disk


def check_output(output: Path) -> Path:
    """Validate ``-o``: must be ``NAME.safetensors`` (checked before any long work starts)."""
    output = Path(output)
    if not output.name.endswith(".safetensors") or output.name == ".safetensors":
        raise MicromotionError(f"{output}: the output must be NAME.safetensors")
    if output.is_dir():
        raise MicromotionError(f"{output}: is a directory")
    return output


def output_paths(output: Path) -> dict[str, Path]:
    """The files written for ``-o output``, by role."""
    stem = output.name.removesuffix(".safetensors")
    return {
        "micromotion": output,
        "anchors": output.with_name(f"{stem}_anchors.npy"),
        "strip": output.with_name(f"{stem}_strip.png"),
        "record": output.with_name(f"{stem}.json"),
    }


def make_strip(images: np.ndarray, *, height: int = STRIP_HEIGHT) -> np.ndarray:
    """Tile ``uint8`` ``[k, H, W, 3]`` side by side, each resized to ``height`` px high."""
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"expected [k, H, W, 3] images, got {list(images.shape)}")
    _, h, w, _ = images.shape
    width = max(1, round(w * height / h))
    tiles = [
        np.asarray(Image.fromarray(img).resize((width, height), Image.LANCZOS))
        if (h, w) != (height, width)
        else img
        for img in images
    ]
    return np.concatenate(tiles, axis=1)


def write_discovery(
    output: Path,
    *,
    micromotion: Micromotion,
    anchors: torch.Tensor,
    strip_images: np.ndarray,
    record: dict[str, Any],
) -> dict[str, Path]:
    """Write the micromotion, its anchors, a preview strip and a JSON record, atomically.

    Args:
        output: ``NAME.safetensors``.
        micromotion: The decoded micromotion.
        anchors: ``[n, num_ws, w_dim]`` anchor codes.
        strip_images: ``uint8`` ``[k, H, W, 3]`` images for the preview strip (rendered
            anchors, or aligned video frames).
        record: Provenance (settings, seeds, generator fingerprint...).

    Returns:
        The paths written, by role.
    """
    from PIL.PngImagePlugin import PngInfo

    paths = output_paths(output)
    text = json.dumps(record, allow_nan=False)
    info = PngInfo()
    info.add_text("micromotion", text)
    strip = make_strip(strip_images)
    # Nest the atomic writes: every file exists as a complete temporary file before the first
    # rename, so an error on any of them leaves none of the outputs behind.
    with contextlib.ExitStack() as stack:
        tmp = {role: stack.enter_context(atomic_path(p)) for role, p in paths.items()}
        micromotion.save(tmp["micromotion"])
        with open(tmp["anchors"], "wb") as fh:
            np.save(fh, anchors.detach().float().cpu().numpy())
        Image.fromarray(strip).save(tmp["strip"], format="PNG", pnginfo=info)
        tmp["record"].write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    return paths
