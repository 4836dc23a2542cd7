"""Turning a user's photo into the aligned face crop that inversion needs (shared by commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from micromotion.errors import MicromotionError
from micromotion.images import read_rgb


def face_crop(
    path: Path, *, resolution: int, align: bool, face: int | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read ``path`` and return its face as ``uint8 [R, R, 3]`` plus the geometry used.

    Args:
        path: A photo (``align``) or an already-aligned square crop (``align=False``).
        resolution: The generator's resolution ``R``.
        align: Detect and FFHQ-align the face.
        face: Which face (0 = largest) when the photo shows several.

    Returns:
        The crop and a JSON-serialisable record: the detector, box, quad, landmarks and the
        aligned→original transform (so an edit can be pasted back), or ``{"aligned": False}``.

    Raises:
        MicromotionError: Naming the file: unreadable, no face, face too small, not square.
    """
    rgb = read_rgb(path)
    if not align:
        h, w = rgb.shape[:2]
        if abs(w - h) > max(1, 0.01 * max(w, h)):
            raise MicromotionError(
                f"{path}: {w}x{h} is not square; an aligned face crop is expected with --no-align"
            )
        if (h, w) != (resolution, resolution):
            rgb = np.asarray(Image.fromarray(rgb).resize((resolution, resolution), Image.LANCZOS))
        return rgb, {"aligned": False}
    from micromotion.faces import align_image

    try:
        crop = align_image(rgb, size=resolution, face=face)[0]
    except MicromotionError as exc:
        raise MicromotionError(f"{path}: {exc}") from None
    detection = crop.face
    record = {
        "aligned": True,
        "face_index": crop.index,
        "detector": detection.detector if detection else None,
        "box": list(detection.box) if detection else None,
        "quad": np.round(crop.quad, 3).tolist(),
        "landmarks": np.round(crop.landmarks, 3).tolist(),
        "transform_aligned_to_original": crop.transform.tolist(),
    }
    return crop.image, record
