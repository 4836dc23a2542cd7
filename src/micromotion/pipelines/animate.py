"""Animate a face (step 3): a photo, a code or a seed moved along micromotions, rendered as a clip.

Frame ``i`` of ``frames`` is ``w + (i / (frames − 1)) · Σ strengthₖ · dₖ`` (masked directions).
For a photo, the face is aligned and inverted first, and the crop, the reconstruction and the
code are saved beside the clip (``OUT_aligned.png``, ``OUT_recon.png``, ``OUT_latent.npy``);
the clip's record goes to ``OUT.json`` (``OUT.mp4.json`` for ``OUT.mp4``).

Under a preset (``apply --preset paper``: :func:`preset_render` says which of ``main.py``'s two
modes a micromotion gets, :func:`~micromotion.pipelines.presets.resolve_preset` the settings)
``OUT.json`` also records ``preset`` — its overrides, notes and known differences. The record
embedded in the clip itself holds the rendering settings alone, so a clip made with the preset
is byte for byte the clip of the same settings typed out (with ``SOURCE_DATE_EPOCH`` set).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from micromotion.core.numbers import check_real
from micromotion.core.progress import Progress
from micromotion.core.provenance import provenance
from micromotion.errors import ParameterError
from micromotion.faces import check_backend
from micromotion.faces.pasteback import PasteBack
from micromotion.inversion import InversionConfig
from micromotion.media.images import read_rgb, to_uint8
from micromotion.media.video_out import check_output_path, open_clip_writer
from micromotion.networks.sampling import sample_ws
from micromotion.networks.stylegan2 import Generator, NoiseMode
from micromotion.pipelines._load import GeneratorSpec, open_generator
from micromotion.pipelines.latents import read_code
from micromotion.pipelines.losses import select_loss
from micromotion.pipelines.outputs import (
    OutputSet,
    photo_outputs,
    save_npy,
    save_png_record,
    save_record,
)
from micromotion.pipelines.photo import (
    PROJECTOR,
    FaceCrop,
    InverterSettings,
    choose_inverter,
    face_crop,
    inversion_record,
    invert_crops,
    open_inverter,
)
from micromotion.pipelines.presets import Render, check_preset
from micromotion.render.codes import clip_codes, loop_indices
from micromotion.render.frames import NORMALIZE, render_frames
from micromotion.subspace.micromotion import Micromotion
from micromotion.weights.assets import fetch_all
from micromotion.weights.lpips import LIN_ENTRY, VGG16_ENTRY
from micromotion.weights.micromotion import load_micromotion

#: The strength of a micromotion when none is given (the paper renders up to 5·d).
DEFAULT_STRENGTH = 5.0


@dataclass(frozen=True)
class ClipSettings:
    """How the clip is rendered.

    Attributes:
        frames: Frames rendered (the last one reaches the full strength).
        fps: Frames per second of an MP4 or GIF.
        layers: Layers the edits move, e.g. ``"0-7"`` (default: each micromotion's own).
        loop: ``none``, or ``pingpong`` (there and back, the way back replayed from memory).
        noise_mode: Synthesis noise: ``const`` keeps the texture still.
        batch_size: Frames per synthesis pass.
        normalize: ``clamp`` (ours) or ``minmax`` (the paper's renderer: each frame stretched
            from its minimum to its maximum).
    """

    frames: int = 100
    fps: float = 30.0
    layers: str | None = None
    loop: Literal["none", "pingpong"] = "none"
    noise_mode: NoiseMode = "const"
    batch_size: int = 8
    normalize: Literal["clamp", "minmax"] = "clamp"

    def __post_init__(self) -> None:
        if self.normalize not in NORMALIZE:
            raise ParameterError("normalize", f"{self.normalize!r}: choose clamp or minmax")
        if not 2 <= self.frames <= 10_000:
            raise ParameterError("frames", f"{self.frames}: need 2 to 10000 frames")
        if not math.isfinite(self.fps) or not 1 <= self.fps <= 240:
            raise ParameterError("fps", f"{self.fps}: must be a number from 1 to 240")
        if self.batch_size < 1:
            raise ParameterError("batch_size", f"{self.batch_size}: must be at least 1")
        loop_indices(2, self.loop)  # an unknown loop is refused here, before any work


@dataclass(frozen=True)
class PhotoSettings:
    """How a photo becomes the start code.

    Attributes:
        steps: Projector steps.
        align: Detect and FFHQ-align the face (``False``: the photo is an aligned crop).
        face: Which face (0 = largest) when the photo shows several.
        paste_back: Frames show the whole photo with the moving face blended in.
        lpips: LPIPS-VGG loss (``None``: when its weights are cached).
        inverter: ``auto`` (the paper's ReStyle-pSp for the paper's network, else the
            projector), ``projector``, an encoder zoo name or checkpoint file.
        iterations: ReStyle iterations (5).
        refine: Projector steps after the encoder (0: none).
        alignment: The encoder's input: ``ours`` or ``paper`` (see
            :class:`~micromotion.pipelines.photo.InverterSettings`).
    """

    steps: int = 500
    align: bool = True
    face: int | None = None
    paste_back: bool = False
    lpips: bool | None = None
    inverter: str = "auto"
    iterations: int = 5
    refine: int = 0
    alignment: Literal["ours", "paper"] = "ours"

    @property
    def inverter_settings(self) -> InverterSettings:
        """The inverter part, as the photo pipelines take it."""
        return InverterSettings(self.inverter, self.iterations, self.refine, self.alignment)

    def __post_init__(self) -> None:
        self.inverter_settings  # noqa: B018 - validates iterations and refine now
        if self.alignment == "paper" and not self.align:
            raise ParameterError.worded(
                "{alignment} paper redoes the alignment; it cannot be combined with {align}=False",
                "alignment",
                "align",
            )
        if not self.align and self.paste_back:
            raise ParameterError.worded(
                "{paste_back} needs alignment; it cannot be combined with {align}=False",
                "paste_back",
                "align",
            )
        if not self.align and self.face is not None:
            raise ParameterError.worded(
                "{face} needs alignment; it cannot be combined with {align}=False", "face", "align"
            )


@dataclass(frozen=True)
class Animation:
    """What :func:`animate` wrote.

    Attributes:
        output: The clip.
        record_path: Its provenance record.
        total_frames: Frames in the clip (a ping-pong loop plays most of them twice).
        record: The provenance.
        photo_files: For a photo: ``aligned``, ``recon``, ``latent`` → path.
        psnr: For a photo: the reconstruction's PSNR in dB.
        loss: For a photo: the inversion loss used.
    """

    output: Path
    record_path: Path
    total_frames: int
    record: dict[str, Any]
    photo_files: dict[str, Path] | None = None
    psnr: float | None = None
    loss: str | None = None


def animate(
    micromotions: Sequence[str | os.PathLike[str] | Micromotion],
    *,
    output: str | os.PathLike[str],
    strengths: Sequence[float] | None = None,
    generator: GeneratorSpec = "ffhq",
    image: str | os.PathLike[str] | None = None,
    latent: str | os.PathLike[str] | None = None,
    index: int | None = None,
    seed: int | None = None,
    truncation_psi: float = 0.7,
    clip: ClipSettings | None = None,
    photo: PhotoSettings | None = None,
    device: str | torch.device = "auto",
    progress: Progress | None = None,
    preset: Mapping[str, Any] | None = None,
) -> Animation:
    """Animate one face along ``micromotions`` and write the clip (``.mp4``, ``.gif``, ``.png``).

    Args:
        micromotions: Files, zoo names (``smile``) or loaded micromotions; their edits add up.
        output: The clip: ``.mp4`` (H.264), ``.gif`` or ``.png`` (a strip of frames).
        strengths: One strength per micromotion, or one for all (default
            :data:`DEFAULT_STRENGTH`).
        generator: A checkpoint file, a zoo name (default ``ffhq``), or a loaded generator.
        image: Start from this photo (aligned and inverted first).
        latent: Start from this W+ code (``.npy``).
        index: Row of ``latent`` when it holds several codes.
        seed: Start from the face of this seed.
        truncation_psi: Truncation of the seed's face.
        clip: How the clip is rendered.
        photo: How the photo becomes a code.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        progress: Progress reporting (``invert`` per step, ``render`` per frame).
        preset: The record of a preset the settings come from
            (:func:`~micromotion.pipelines.presets.resolve_preset` for
            :func:`preset_render`'s mode); checked against the settings used, and stored
            in ``OUT.json`` as ``preset``.

    Returns:
        The files written and the record.
    """
    # Step 0 — check inputs: everything that can be wrong fails before a network loads.
    clip = clip or ClipSettings()
    photo = photo or PhotoSettings()
    specs = list(micromotions)
    if not specs:
        raise ParameterError("micromotions", "is empty: give a file or a zoo name such as smile")
    if sum(x is not None for x in (image, latent, seed)) != 1:
        raise ParameterError.worded(
            "give exactly one of {image} PHOTO, {latent} W.npy or {seed} N",
            "image",
            "latent",
            "seed",
        )
    values = _strengths(strengths, len(specs))
    if seed is not None:
        check_real("truncation_psi", truncation_psi, low=0, high=2)
    out = check_output_path(Path(output))
    photo_path = None if image is None else Path(image)
    files = {"clip": out, "record": out.with_name(out.name + ".json")}
    if photo_path is not None:
        files |= photo_outputs(out)
    outputs = OutputSet(files, reads=[image, latent, generator, *specs])
    if photo_path is not None:
        read_rgb(photo_path)  # an unreadable photo fails before any download
        if photo.align:
            check_backend()
    # Everything to download, at once: offline, one message names every missing file.
    lpips_names = [VGG16_ENTRY, LIN_ENTRY] if photo_path is not None and photo.lpips else []
    encoder_name = [choose_inverter(photo.inverter, generator)] if photo_path is not None else []
    encoder_name = [n for n in encoder_name if n != PROJECTOR]
    fetch_all([generator, *specs, *lpips_names, *encoder_name])
    with outputs:  # every file of the result appears at the end, or none
        return _animate(specs, values, outputs, generator, photo_path, latent, index, seed,
                        truncation_psi, clip, photo, device, progress, preset)  # fmt: skip


def _animate(
    specs: list[str | os.PathLike[str] | Micromotion],
    values: list[float],
    outputs: OutputSet,
    generator: GeneratorSpec,
    photo_path: Path | None,
    latent: str | os.PathLike[str] | None,
    index: int | None,
    seed: int | None,
    truncation_psi: float,
    clip: ClipSettings,
    photo: PhotoSettings,
    device: str | torch.device,
    progress: Progress | None,
    preset: Mapping[str, Any] | None,
) -> Animation:
    out = outputs.files["clip"]
    loaded = [s if isinstance(s, Micromotion) else load_micromotion(s) for s in specs]
    if preset is not None:
        actual = {"strengths": values, **asdict(clip), **asdict(photo)}
        if isinstance(generator, str | os.PathLike):
            actual["generator"] = str(generator)
        check_preset(preset, preset_render(loaded), actual)
    if clip.layers is not None:
        loaded = [mm.with_layers(clip.layers) for mm in loaded]
    G, spec = open_generator(generator, device)
    fingerprint = G.fingerprint()  # a full hash of the weights: once, not per micromotion
    for mm in loaded:
        mm.check_compatible(num_ws=G.num_ws, w_dim=G.w_dim, fingerprint=fingerprint)

    # The start code: a photo's inversion, a saved code, or a sampled face.
    paster = None
    inverted: dict[str, Any] = {}
    if photo_path is not None:
        w, start, found, inverted = _invert_photo(
            G, photo_path, outputs, photo, spec, fingerprint, progress
        )
        if photo.paste_back:
            assert found.aligned is not None  # align=True (checked above)
            paster = PasteBack(found.photo, found.aligned, G.img_resolution)
    elif latent is not None:
        w = read_code(Path(latent), index, num_ws=G.num_ws, w_dim=G.w_dim)
        start = {"latent": str(latent), "index": index}
    else:
        assert seed is not None
        w = sample_ws(G, [seed], truncation_psi=truncation_psi)[0].cpu()
        start = {"seed": seed, "truncation_psi": truncation_psi}

    # Step 3 — transfer and render: w + t·Σ s·d, frame by frame.
    codes = clip_codes(w, list(zip(loaded, values, strict=True)), frames=clip.frames)
    record = provenance(
        command="apply",
        micromotions=[
            {
                "spec": str(s) if not isinstance(s, Micromotion) else mm.name,
                "name": mm.name,
                "strength": v,
                "layers": mm.metadata.get("layers"),
                "source": mm.metadata.get("source"),
            }
            for s, mm, v in zip(specs, loaded, values, strict=True)
        ],
        generator=spec,
        generator_fingerprint=fingerprint,
        start=start,
        frames=clip.frames,
        fps=clip.fps,
        loop=clip.loop,
        noise_mode=clip.noise_mode,
        normalize=clip.normalize,
        paste_back=None
        if paster is None
        else {"photo_size": list(paster.photo.shape[1::-1]), "box": [int(v) for v in paster.box]},
        formula="w + (i/(frames-1)) * sum(strength * masked direction)",
    )
    total = len(loop_indices(clip.frames, clip.loop))
    rendered = 0
    first = last = None

    def count(n: int) -> None:
        nonlocal rendered
        rendered += n
        if progress is not None:
            progress("render", rendered, clip.frames, "")

    with open_clip_writer(
        outputs.path("clip"),
        fps=clip.fps,
        total_frames=total,
        comment=json.dumps(record),
        suffix=out.suffix,
    ) as sink:
        for batch in render_frames(
            G,
            codes,
            loop=clip.loop,
            batch_size=clip.batch_size,
            noise_mode=clip.noise_mode,
            callback=count,
            normalize=clip.normalize,
        ):
            if first is None:
                first = batch[0]
            last = batch[-1]
            sink.write(paster(batch) if paster is not None else batch)
    _warn_if_saturated(first, last, values)
    if preset is not None:  # how the settings were chosen: beside the clip, not inside it
        record = {**record, "preset": dict(preset)}
    save_record(outputs.path("record"), record)
    return Animation(out, outputs.files["record"], total, record, **inverted)


def preset_render(micromotions: Sequence[str | os.PathLike[str] | Micromotion]) -> Render:
    """Which of ``main.py``'s two renders a preset gives ``micromotions``.

    The paper's code rendered one direction per clip: one of its five pre-computed ones
    (``--category C``: ``render-official``) or one it had just made from text
    (``--category custom``: ``render-text``), each with its own frames, strength and fps.

    Args:
        micromotions: Files, zoo names or loaded micromotions (exactly one).

    Returns:
        ``render-official`` or ``render-text``.

    Raises:
        ParameterError: ``preset``, for several micromotions or one the paper's code never
            rendered (from video, from saved anchors, a baseline).
    """
    if len(micromotions) != 1:
        raise ParameterError(
            "preset",
            f"paper renders one micromotion, as the paper's main.py; got {len(micromotions)}",
        )
    spec = micromotions[0]
    mm = spec if isinstance(spec, Micromotion) else load_micromotion(spec)
    source = mm.metadata.get("source")
    if source == "official":
        return "render-official"
    if source == "text":
        return "render-text"
    raise ParameterError(
        "preset",
        f"paper renders the paper's five directions and text micromotions; {mm.name} comes "
        f"from {source or 'an unknown source'} (give the clip's options without the preset)",
    )


#: A last frame with more than this share of its values at 0 or 255 is reported as saturated.
SATURATED = 0.5


def _saturation(frame: np.ndarray) -> float:
    return float(((frame == 0) | (frame == 255)).mean())


def _warn_if_saturated(first: Any, last: Any, strengths: list[float]) -> None:
    """Warn when the strength, not the face, drives the last frame to black or white."""
    if first is None or last is None:
        return
    share = _saturation(last)
    if share > SATURATED and share >= _saturation(first) + 0.25:
        warnings.warn(
            f"strength {', '.join(f'{s:g}' for s in strengths)} saturates the clip: "
            f"{share:.0%} of the last frame's pixel values are pure black or white; "
            "try a smaller strength",
            stacklevel=3,
        )


def _strengths(strengths: Sequence[float] | None, count: int) -> list[float]:
    """One finite, float32-sized strength per micromotion."""
    given = list(strengths or [])
    if len(given) > 1 and len(given) != count:
        raise ParameterError.worded(
            "{n} {strengths} values for {count} micromotions",
            "strengths",
            n=len(given),
            count=count,
        )
    for value in given:
        check_real("strengths", value)
    if len(given) == 1:
        return given * count
    return given or [DEFAULT_STRENGTH] * count


def _invert_photo(
    G: Generator,
    image: Path,
    outputs: OutputSet,
    settings: PhotoSettings,
    spec: str,
    fingerprint: str,
    progress: Progress | None,
) -> tuple[torch.Tensor, dict[str, Any], FaceCrop, dict[str, Any]]:
    """Align and invert the photo; save the crop, reconstruction and code beside ``output``."""
    found = face_crop(image, resolution=G.img_resolution, align=settings.align, face=settings.face)
    crop, geometry = found.image, found.record
    loss_fn, loss_name = select_loss(device=G.w_avg.device, lpips=settings.lpips)
    config = InversionConfig(steps=settings.steps)
    encoder = open_inverter(settings.inverter_settings, spec, G.w_avg.device)
    result, distances, used = invert_crops(
        G, [found], encoder=encoder, settings=settings.inverter_settings, config=config,
        loss_fn=loss_fn, loss_name=loss_name, progress=progress,
    )  # fmt: skip
    paths = {role: outputs.files[role] for role in ("aligned", "recon", "latent")}
    record = inversion_record(
        "apply (inversion)",
        image,
        index=0,
        result=result,
        lpips=distances[0],
        geometry=geometry,
        config=config,
        loss_name=loss_name,
        generator_spec=spec,
        fingerprint=fingerprint,
        files={k: p.name for k, p in paths.items()},
        inverter=used,
    )
    save_png_record(outputs.path("aligned"), crop, record)
    save_png_record(outputs.path("recon"), to_uint8(result.images)[0], record)
    save_npy(outputs.path("latent"), result.ws[0].float().numpy())
    start = {
        "image": str(image),
        "image_sha256": record["image_sha256"],
        "psnr_db": record["psnr_db"],
        "lpips": record["lpips"],
        "loss": loss_name,
        "inversion": config.to_dict(),
        "inverter": used,
        "photo": asdict(settings),
        "face": geometry,
        "latent": paths["latent"].name,
    }
    summary = {"photo_files": paths, "psnr": float(result.psnr[0]), "loss": loss_name}
    return result.ws[0], start, found, summary
