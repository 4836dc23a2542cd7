"""A photo → its aligned face crop → its W+ code: the part every photo pipeline shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from micromotion.core.io import sha256_file
from micromotion.core.progress import Progress, stage_callback
from micromotion.core.provenance import provenance
from micromotion.errors import MicromotionError
from micromotion.faces import AlignedFace, align_image
from micromotion.inversion import PIXEL_LOSS_NAME, InversionConfig, InversionResult, LossFn, invert
from micromotion.media.images import fit_square, from_uint8, read_rgb
from micromotion.networks.stylegan2 import Generator


@dataclass(frozen=True)
class FaceCrop:
    """A photo's face, ready for inversion.

    Attributes:
        image: ``uint8 [R, R, 3]`` the crop.
        record: JSON-serialisable geometry (see :func:`face_crop`).
        photo: ``uint8 [H, W, 3]`` the photo as read.
        aligned: The alignment (with its transform back to the photo), or ``None`` for
            crops that were aligned already.
    """

    image: np.ndarray
    record: dict[str, Any]
    photo: np.ndarray
    aligned: AlignedFace | None = None


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
        hint = "an aligned face crop is expected when alignment is off"
        return FaceCrop(fit_square(rgb, resolution, path=path, hint=hint), {"aligned": False}, rgb)
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


def run_inversion(
    G: Generator,
    crops: list[np.ndarray],
    *,
    config: InversionConfig,
    loss_fn: LossFn,
    loss_name: str,
    progress: Progress | None = None,
    stage: str = "invert",
) -> tuple[InversionResult, list[float | None]]:
    """Invert ``uint8 [R, R, 3]`` crops together, reporting each step to ``progress``.

    Returns:
        The :class:`~micromotion.inversion.InversionResult` and, per crop, the final LPIPS
        distance when LPIPS was the loss (``None`` otherwise).
    """
    targets = torch.stack([from_uint8(c) for c in crops])  # [B, 3, R, R]
    result = invert(
        G,
        targets,
        config=config,
        loss_fn=loss_fn,
        callback=stage_callback(progress, stage, config.steps),
    )
    if loss_name == PIXEL_LOSS_NAME:
        return result, [None] * len(crops)
    device = G.w_avg.device
    with torch.no_grad():  # report the final perceptual distance beside the PSNR
        distances = loss_fn(result.images.to(device), targets.to(device)).cpu()
    return result, [round(float(d), 5) for d in distances]


def inversion_record(
    command: str,
    image: Path,
    *,
    index: int,
    result: InversionResult,
    lpips: float | None,
    geometry: dict[str, Any],
    config: InversionConfig,
    loss_name: str,
    generator_spec: str,
    fingerprint: str,
    **extra: Any,
) -> dict[str, Any]:
    """The provenance of one inverted photo (shared by inverting and animating photos)."""
    return provenance(
        command=command,
        image=str(image),
        image_sha256=sha256_file(image),
        generator=generator_spec,
        generator_fingerprint=fingerprint,
        settings=config.to_dict(),
        loss=loss_name,
        face=geometry,
        psnr_db=round(float(result.psnr[index]), 3),
        lpips=lpips,
        **extra,
    )
