"""A photo → its aligned face crop → its W+ code: the part every photo pipeline shares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from micromotion.core.io import sha256_file
from micromotion.core.progress import Progress, stage_callback
from micromotion.core.provenance import provenance
from micromotion.errors import MicromotionError, ParameterError
from micromotion.faces import AlignedFace, align_face, align_image
from micromotion.inversion import PIXEL_LOSS_NAME, InversionConfig, InversionResult, LossFn, invert
from micromotion.media.images import fit_square, from_uint8, read_rgb
from micromotion.networks.stylegan2 import Generator
from micromotion.pipelines._load import cached, precomputed


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


#: The cache kind under which a face crop computed elsewhere (a batch's alignment worker) is
#: handed to :func:`face_crop` (see :meth:`~micromotion.pipelines._load.NetworkCache.put`).
FACE_CROP = "face-crop"


def crop_key(resolution: int, align: bool, face: int | None) -> tuple[int, bool, int | None]:
    """The key a precomputed crop of a photo is handed over under: what :func:`face_crop` asks."""
    return (resolution, align, face)


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
    found = precomputed(FACE_CROP, path, crop_key(resolution, align, face))
    if isinstance(found, MicromotionError):  # a batch worker found no face: the same error
        raise found
    if found is not None:
        return found
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


#: The paper's inverter (its code inverts photos with ReStyle-pSp, 5 iterations).
PAPER_INVERTER = "restyle-psp-ffhq"
PROJECTOR = "projector"


def choose_inverter(inverter: str, generator: object) -> str:
    """Resolve ``"auto"``: the paper's encoder for the paper's network, else the projector.

    An encoder only fits the generator it was trained with, so a user's own generator gets
    the optimisation projector unless an encoder is named.
    """
    if inverter != "auto":
        return inverter
    from micromotion import hub

    if isinstance(generator, str) and not hub.looks_like_path(generator):
        # The paper's network in either of its files: NVIDIA's TensorFlow original or
        # rosinality's conversion (the one the paper's code and ReStyle's decoder load).
        papers = {hub.get(name).name for name in ("ffhq", "ffhq-rosinality")}
        try:
            if hub.get(generator).name in papers:
                return PAPER_INVERTER
        except MicromotionError:
            pass
    return PROJECTOR


def paper_crop(found: FaceCrop) -> np.ndarray | None:
    """The paper code's crop of the same face: the FFHQ recipe straight to 256 px.

    ``None`` for a crop that was aligned already (there are no landmarks to redo it from).
    """
    if found.aligned is None:
        return None
    return align_face(found.photo, found.aligned.landmarks, size=256, transform_size=256).image


def _run_encoder(
    G: Generator, targets: torch.Tensor, inputs: torch.Tensor, encoder: Any, how: tuple[Any, Any]
) -> tuple[InversionResult, dict[str, Any]]:
    """Encoder codes from ``inputs [B, 3, 256, 256]``, then ``refine(codes)`` projector steps.

    ``targets [B, 3, R, R]`` are what the codes are measured (and refined) against; ``how``
    is ``(settings, refine)``.

    Returns:
        The result (codes, renders, PSNR) and a record: method, iterations, refinement and
        the PSNR after each encoder iteration.
    """
    from micromotion.inversion.encoder import encode

    settings, refine = how
    found = encode(G, encoder, inputs, iterations=settings.iterations, targets=targets)
    per_iteration = [[round(float(v), 3) for v in q] for q in found.psnr]
    if settings.refine > 0:
        result = refine(found.ws)
    else:
        result = InversionResult(
            ws=found.ws.cpu(), noise={}, images=found.final, psnr=found.psnr[-1], losses=[]
        )
    record = {
        "method": encoder.method,
        "encoder": dict(encoder.source),
        "iterations": len(found.iterates),
        "refine": settings.refine,
        "psnr_db_per_iteration": per_iteration,
    }
    return result, record


@dataclass(frozen=True)
class InverterSettings:
    """Which inverter turns a face crop into a code, and how.

    Attributes:
        inverter: ``"auto"`` (the paper's ReStyle-pSp for the paper's network, else the
            projector), ``"projector"``, an encoder zoo name (``restyle-psp-ffhq``,
            ``restyle-e4e-ffhq``, ``e4e-ffhq``, ``psp-ffhq``) or an encoder checkpoint file.
        iterations: ReStyle iterations (5, the paper's); e4e and pSp run once.
        refine: Projector steps from the encoder's codes (0: none; a hybrid with more).
        alignment: What the encoder sees: ``ours`` (the FFHQ recipe at the generator's size,
            averaged down to 256 px) or ``paper`` (the paper's code: the recipe resampled
            straight to 256 px, ``transform_size = 256``). The projector, and the PSNR, always
            use our crop at the generator's size.
    """

    inverter: str = "auto"
    iterations: int = 5
    refine: int = 0
    alignment: Literal["ours", "paper"] = "ours"

    def __post_init__(self) -> None:
        if self.alignment not in ("ours", "paper"):
            raise ParameterError("alignment", f"{self.alignment!r}: choose ours or paper")
        if isinstance(self.iterations, bool) or self.iterations < 1:
            raise ParameterError("iterations", f"{self.iterations}: must be at least 1")
        if self.refine < 0 or self.refine == 1:
            raise ParameterError(
                "refine",
                f"{self.refine}: use 0 (no refinement) or at least 2 projector steps "
                "(the learning rate ramps up from 0)",
            )


def open_inverter(settings: InverterSettings, generator: object, device: Any) -> Any:
    """The encoder the settings name (``None`` for the projector), loaded on ``device``.

    Raises:
        ParameterError: ``inverter``, when the encoder cannot be downloaded (the message says
            how to go on without it).
    """
    from micromotion.errors import DownloadError
    from micromotion.weights.encoders import open_encoder

    name = choose_inverter(settings.inverter, generator)
    if name == PROJECTOR:
        return None
    try:
        return cached("encoder", name, device, lambda: open_encoder(name, device=device))
    except DownloadError as exc:
        raise ParameterError.worded(
            "{inverter} {name}: {problem}; to go on without it: {inverter} projector",
            "inverter",
            name=name,
            problem=exc,
        ) from None


def invert_crops(
    G: Generator,
    faces: Sequence[FaceCrop],
    *,
    encoder: Any,
    settings: InverterSettings,
    config: InversionConfig,
    loss_fn: LossFn,
    loss_name: str,
    progress: Progress | None = None,
    stage: str = "invert",
) -> tuple[InversionResult, list[float | None], dict[str, Any]]:
    """Invert faces with the projector or an encoder (plus refinement).

    The projector fits each face's crop. An encoder sees the crop averaged down to 256 px,
    or with ``settings.alignment == "paper"`` the paper code's crop of the same face
    (:func:`paper_crop`); its codes are still measured and refined against the crop.

    Returns:
        The result, the final LPIPS distances (when LPIPS is the loss) and a record of the
        inverter used.

    Raises:
        ParameterError: The paper's alignment for a face that was given aligned already.
    """
    crops = [f.image for f in faces]
    encoder_crops: list[np.ndarray] | None = None
    if encoder is not None and settings.alignment == "paper":
        redone = [paper_crop(f) for f in faces]
        encoder_crops = [c for c in redone if c is not None]
        if len(encoder_crops) != len(faces):
            raise ParameterError.worded(
                "{alignment} paper redoes the alignment; it needs faces aligned here, not "
                "aligned crops",
                "alignment",
            )
    if encoder is None:
        result, distances = run_inversion(
            G, crops, config=config, loss_fn=loss_fn, loss_name=loss_name,
            progress=progress, stage=stage,
        )  # fmt: skip
        return result, distances, {"method": PROJECTOR, "steps": config.steps}
    from dataclasses import replace

    targets = torch.stack([from_uint8(c) for c in crops])  # [B, 3, R, R]

    def refine(init_ws: torch.Tensor) -> InversionResult:
        steps = settings.refine
        return invert(
            G, targets, config=replace(config, steps=steps), init_ws=init_ws, loss_fn=loss_fn,
            callback=stage_callback(progress, stage, steps),
        )  # fmt: skip

    from micromotion.inversion.encoder import to_encoder_input

    if encoder_crops is not None:
        inputs = torch.stack([from_uint8(c) for c in encoder_crops])  # [B, 3, 256, 256]
    else:
        inputs = to_encoder_input(targets)
    result, record = _run_encoder(G, targets, inputs, encoder, (settings, refine))
    record["alignment"] = "paper" if encoder_crops is not None else "ours"
    if loss_name == PIXEL_LOSS_NAME:
        return result, [None] * len(crops), record
    targets = targets.to(G.w_avg.device)
    with torch.no_grad():
        lpips = loss_fn(result.images.to(G.w_avg.device), targets).cpu()  # [B]
    return result, [round(float(d), 5) for d in lpips], record
