"""Invert photos: each face aligned, inverted into W+, and saved with its reconstruction.

For ``photo.jpg`` in ``outdir``: ``photo.npy`` (the code ``[num_ws, w_dim]``, usable to animate
the face later), ``photo_aligned.png`` (the crop that was inverted, when aligned),
``photo_recon.png`` (what the code renders), ``photo_noise.safetensors`` (with
``optimize_noise``) and ``photo.json`` (the provenance: settings, PSNR, LPIPS distance, the
alignment transform back to the photo).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from micromotion.core.io import save_safetensors
from micromotion.core.progress import Progress
from micromotion.errors import MicromotionError, ParameterError
from micromotion.faces import check_backend
from micromotion.inversion import InversionConfig
from micromotion.media.images import to_uint8
from micromotion.pipelines import outputs
from micromotion.pipelines._load import GeneratorSpec, open_generator
from micromotion.pipelines.losses import select_loss
from micromotion.pipelines.outputs import OutputSet
from micromotion.pipelines.photo import (
    InverterSettings,
    face_crop,
    inversion_record,
    invert_crops,
    open_inverter,
)


@dataclass(frozen=True)
class InvertedPhoto:
    """One photo that was inverted.

    Attributes:
        image: The photo.
        code: Where its code was written (``.npy``).
        psnr: Reconstruction PSNR in dB.
        lpips: Final LPIPS distance, when LPIPS was the loss.
        record: The provenance written beside it.
    """

    image: Path
    code: Path
    psnr: float
    lpips: float | None
    record: dict[str, Any]


@dataclass
class InvertReport:
    """What :func:`invert_photos` did: the photos inverted and the ones that failed."""

    done: list[InvertedPhoto] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    total: int = 0


def invert_photos(
    images: Sequence[str | os.PathLike[str]],
    *,
    outdir: str | os.PathLike[str],
    generator: GeneratorSpec,
    config: InversionConfig | None = None,
    align: bool = True,
    face: int | None = None,
    lpips: bool | None = None,
    inverter: InverterSettings | None = None,
    batch_size: int = 4,
    device: str | torch.device = "auto",
    progress: Progress | None = None,
) -> InvertReport:
    """Align and invert each photo into W+, writing the code, crop, reconstruction and record.

    A photo that cannot be read or has no usable face is recorded in the report's
    ``failures`` and the others go on; the caller decides what that means. With a single
    photo its error is raised instead.

    Args:
        images: Photos (or FFHQ-aligned square crops with ``align=False``).
        outdir: Where the files go (created if need be).
        generator: A checkpoint file, a zoo name, or a loaded generator.
        config: Projector settings (default: :class:`~micromotion.inversion.InversionConfig`).
        align: Detect and FFHQ-align each face first.
        face: Which face (0 = largest) when a photo shows several.
        lpips: LPIPS-VGG loss: ``True`` requires it, ``False`` uses pixels, ``None`` uses it
            when its weights are cached (see :func:`~micromotion.pipelines.losses.select_loss`).
        inverter: Projector or encoder (default ``auto``: the paper's ReStyle-pSp for the
            paper's network, else the projector; see
            :class:`~micromotion.pipelines.photo.InverterSettings`).
        batch_size: Photos inverted together.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (ignored for a loaded generator).
        progress: Progress reporting (``align`` per photo, ``invert`` per step).

    Returns:
        The photos done and the failures.
    """
    paths = [Path(p) for p in images]
    config = config or InversionConfig()
    inverter = inverter or InverterSettings()
    if inverter.alignment == "paper" and not align:
        raise ParameterError.worded(
            "{alignment} paper redoes the alignment; it cannot be combined with {align}=False",
            "alignment",
            "align",
        )
    if not align and face is not None:
        raise ParameterError.worded(
            "{face} needs alignment; it cannot be combined with {align}=False", "face", "align"
        )
    if batch_size < 1:
        raise ParameterError("batch_size", f"{batch_size}: must be at least 1")
    stems = [p.stem for p in paths]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise MicromotionError(f"several inputs share the name {dupes[0]!r}; outputs would clash")
    out = outputs.check_outdir(Path(outdir))
    # Each photo's files are one result, checked now against every input.
    sets = {
        path: OutputSet(_photo_files(out, path.stem, align, config), reads=[*paths, generator])
        for path in paths
    }
    if align:
        check_backend()  # dlib missing: say so before loading anything
    with outputs.lock_dir(out):
        return _invert(
            paths, sets, generator, config, align, face, lpips, inverter, batch_size, device,
            progress,
        )  # fmt: skip


def _photo_files(out: Path, stem: str, align: bool, config: InversionConfig) -> dict[str, Path]:
    files = {"code": out / f"{stem}.npy", "recon": out / f"{stem}_recon.png"}
    if align:
        files["aligned"] = out / f"{stem}_aligned.png"
    if config.optimize_noise:
        files["noise"] = out / f"{stem}_noise.safetensors"
    return {**files, "record": out / f"{stem}.json"}


def _invert(
    paths: list[Path],
    sets: dict[Path, OutputSet],
    generator: GeneratorSpec,
    config: InversionConfig,
    align: bool,
    face: int | None,
    lpips: bool | None,
    inverter: InverterSettings,
    batch_size: int,
    device: str | torch.device,
    progress: Progress | None,
) -> InvertReport:
    G, spec = open_generator(generator, device)
    encoder = open_inverter(inverter, generator, G.w_avg.device)
    fingerprint = G.fingerprint()  # a full hash of the weights: once, not per image

    report = InvertReport(total=len(paths))
    loaded = []
    for done, path in enumerate(paths, start=1):
        try:
            found = face_crop(path, resolution=G.img_resolution, align=align, face=face)
        except MicromotionError as exc:
            if len(paths) == 1:
                raise  # one photo: its own error, not a report of one failure
            report.failures.append(str(exc))
        else:
            loaded.append((path, found))
        if progress is not None:
            progress("align", done, len(paths), path.name)
    if not loaded:
        return report
    # Chosen once the photos are known to be usable (its fallback warning is about them).
    loss_fn, loss_name = select_loss(device=G.w_avg.device, lpips=lpips)
    for start in range(0, len(loaded), batch_size):
        batch = loaded[start : start + batch_size]
        result, distances, used = invert_crops(
            G,
            [found for _, found in batch],
            encoder=encoder,
            settings=inverter,
            config=config,
            loss_fn=loss_fn,
            loss_name=loss_name,
            progress=progress,
            stage="invert " + ", ".join(b[0].name for b in batch),
        )
        recon = to_uint8(result.images)
        for i, (path, found) in enumerate(batch):
            crop, geometry = found.image, found.record
            record = inversion_record(
                "invert",
                path,
                index=i,
                result=result,
                lpips=distances[i],
                geometry=geometry,
                config=config,
                loss_name=loss_name,
                generator_spec=spec,
                fingerprint=fingerprint,
                latent=f"{path.stem}.npy",
                latent_shape=[G.num_ws, G.w_dim],
                inverter=_for_photo(used, i),
            )
            with sets[path] as files:  # all of this photo's files, or none
                outputs.save_npy(files.path("code"), result.ws[i].float().numpy())
                if geometry["aligned"]:
                    aligned = {**record, "what": "aligned input"}
                    outputs.save_png_record(files.path("aligned"), crop, aligned)
                outputs.save_png_record(files.path("recon"), recon[i], record)
                if result.noise:
                    noise = {k: v[i].contiguous() for k, v in result.noise.items()}
                    save_safetensors(noise, files.path("noise"))
                outputs.save_record(files.path("record"), record)
            code = sets[path].files["code"]
            report.done.append(
                InvertedPhoto(path, code, float(result.psnr[i]), distances[i], record)
            )
    return report


def _for_photo(used: dict[str, Any], i: int) -> dict[str, Any]:
    """The inverter record with only photo ``i``'s per-iteration PSNR."""
    if "psnr_db_per_iteration" not in used:
        return used
    return {**used, "psnr_db_per_iteration": [it[i] for it in used["psnr_db_per_iteration"]]}
