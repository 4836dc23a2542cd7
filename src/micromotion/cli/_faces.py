"""Turning a user's photo into the aligned face crop that inversion needs (shared by commands)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from micromotion.errors import MicromotionError
from micromotion.images import fit_square, read_rgb


@dataclass(frozen=True)
class FaceCrop:
    """A photo's face, ready for inversion.

    Attributes:
        image: ``uint8 [R, R, 3]`` the crop.
        record: JSON-serialisable geometry (see :func:`face_crop`).
        photo: ``uint8 [H, W, 3]`` the photo as read.
        aligned: The alignment (with its transform back to the photo), or ``None`` for
            ``--no-align`` crops.
    """

    image: np.ndarray
    record: dict[str, Any]
    photo: np.ndarray
    aligned: Any = None  # micromotion.faces.AlignedFace; imported lazily (dlib)


def face_crop(path: Path, *, resolution: int, align: bool, face: int | None = None) -> FaceCrop:
    """Read ``path`` and return its face as ``uint8 [R, R, 3]`` plus the geometry used.

    Args:
        path: A photo (``align``) or an already-aligned square crop (``align=False``).
        resolution: The generator's resolution ``R``.
        align: Detect and FFHQ-align the face.
        face: Which face (0 = largest) when the photo shows several.

    Returns:
        The crop, the photo, the alignment, and a JSON-serialisable record: the detector,
        box, quad, landmarks and the aligned→original transform (so an edit can be pasted
        back), or ``{"aligned": False}``.

    Raises:
        MicromotionError: Naming the file: unreadable, no face, face too small, not square.
    """
    rgb = read_rgb(path)
    if not align:
        hint = "an aligned face crop is expected with --no-align"
        return FaceCrop(fit_square(rgb, resolution, path=path, hint=hint), {"aligned": False}, rgb)
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
    return FaceCrop(crop.image, record, rgb, crop)
