"""Discover a micromotion: anchors (step 1) → robust subspace (step 2), from text, video or codes.

Each pipeline reads like the paper: it checks its inputs up front, builds the anchors, decodes
the micromotion, and writes ``NAME.safetensors`` with ``NAME_anchors.npy``, ``NAME_strip.png``
and ``NAME.json`` — all four or none (:func:`micromotion.pipelines.outputs.write_discovery`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from micromotion.anchors.text import (
    TextAnchorConfig,
    format_prompts,
    text_anchors,
)
from micromotion.anchors.video import VideoAnchorConfig, pick_frames, video_anchors
from micromotion.core.devices import resolve_device
from micromotion.core.io import load_float_npy, require_file, sha256_file
from micromotion.core.progress import Progress, stage_callback
from micromotion.core.provenance import provenance
from micromotion.errors import MicromotionError, ParameterError
from micromotion.faces import check_backend
from micromotion.media.video_in import probe_video
from micromotion.networks.irse import IdentityLoss
from micromotion.networks.stylegan2 import Generator
from micromotion.pipelines._load import GeneratorSpec, cached, open_generator
from micromotion.pipelines.latents import read_code
from micromotion.pipelines.losses import select_loss
from micromotion.pipelines.outputs import (
    OutputSet,
    check_output,
    discovery_outputs,
    write_discovery,
)
from micromotion.pipelines.photo import InverterSettings, open_inverter
from micromotion.pipelines.presets import check_preset
from micromotion.subspace.direction import Method
from micromotion.subspace.layers import layer_mask
from micromotion.subspace.micromotion import Micromotion
from micromotion.weights.clip import DEFAULT_CLIP, load_clip
from micromotion.weights.irse import load_irse50

#: The video preview shows at most this many frames, evenly picked.
STRIP_TILES = 16


@dataclass(frozen=True)
class Decomposition:
    """How anchors become a micromotion (the decomposition options every discovery shares).

    Attributes:
        rank: Rank of the low-rank reconstruction (the paper: 4) or ``"auto"``.
        method: How the direction is read off the denoised anchors (``None``: the library's
            default, see :data:`micromotion.subspace.DEFAULT_METHOD`).
        layers: Layers the edit moves, e.g. ``"0-7"`` (default: all).
        name: Name recorded in the file (default: the output's stem).
        robust: Robust PCA (the paper); ``False`` for plain truncated PCA.
        center: Subtract the per-layer mean first.
        rpca: ``"converged"`` (default: Lin et al.'s μ schedule, run to a 1e-7 relative
            residual) or ``"paper"``: the authors' code's fixed μ = m·n / (4·ΣD²) and stopping
            rule, which stops after a few iterations (see :func:`micromotion.subspace.robust_pca`).
        end_anchor: The anchor the motion ends at: ``-1`` (default) the last; ``-2`` the
            second-to-last, as the paper's code did by an indexing slip (its text direction
            ends at the "90%" anchor). Every anchor still enters the decomposition.
    """

    rank: int | Literal["auto"] = 4
    method: Method | None = None
    layers: str | None = None
    name: str | None = None
    robust: bool = True
    center: bool = False
    rpca: Literal["converged", "paper"] = "converged"
    end_anchor: int = -1

    def __post_init__(self) -> None:
        if isinstance(self.end_anchor, bool) or not isinstance(self.end_anchor, int):
            raise ParameterError("end_anchor", f"{self.end_anchor!r}: expected an integer")
        if self.end_anchor == 0:
            raise ParameterError(
                "end_anchor", "0 is the first anchor, where the motion starts; use -1 (the last)"
            )
        if self.rpca not in ("converged", "paper"):
            raise ParameterError("rpca", f"{self.rpca!r}: choose converged or paper")
        if self.rank != "auto" and (
            isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1
        ):
            raise ParameterError("rank", f"{self.rank!r}: expected an integer ≥ 1 or auto")

    def settings(self) -> dict[str, Any]:
        """The fields by name, as :func:`~micromotion.pipelines.presets.check_preset` reads them."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def record(self, mm: Micromotion, preset: Any) -> dict[str, Any]:
        """What a discovery's record says of its decomposition (``mm`` is what it decoded)."""
        return {
            "rank": self.rank,
            "method": mm.metadata["method"],
            "end_anchor": self.end_anchor,
            "rpca_settings": self.rpca,
            "layers": mm.metadata["layers"],
            "preset": preset,
        }

    def check_layers(self, num_ws: int) -> None:
        """A bad ``layers`` fails before any long work."""
        if self.layers is not None:
            layer_mask(self.layers, num_ws)

    def decode(
        self,
        anchors: torch.Tensor,
        output: Path,
        *,
        source: str,
        generator_fingerprint: str | None,
        metadata: Mapping[str, Any],
    ) -> Micromotion:
        """Decode the micromotion of ``anchors`` ``[n, num_ws, w_dim]``.

        Raises:
            MicromotionError: For anchors without motion (all identical) or a decoded
                direction that is zero, as well as the decomposition's own errors.
        """
        if anchors.ndim == 3 and anchors.shape[0] >= 3 and bool((anchors == anchors[:1]).all()):
            raise MicromotionError(
                f"all {anchors.shape[0]} anchors are identical: there is no motion to decode"
            )
        mm = Micromotion.from_anchors(
            anchors,
            rank=self.rank,
            robust=self.robust,
            center=self.center,
            method=self.method,
            layers=self.layers,
            name=self.name or output.name.removesuffix(".safetensors"),
            source=source,
            generator_fingerprint=generator_fingerprint,
            metadata={**metadata, "rpca_settings": self.rpca},
            rpca_kwargs={"mu": "paper", "tol": "paper"} if self.rpca == "paper" else None,
            end_anchor=self.end_anchor,
        )
        if not bool(mm.masked_direction.any()):
            raise MicromotionError(
                "the decoded direction is zero: the first and last anchors agree after "
                "denoising, so there is no motion between them"
            )
        return mm


@dataclass(frozen=True)
class Discovery:
    """What a discovery wrote: the micromotion, its files by role, and the provenance record.

    Attributes:
        micromotion: The decoded micromotion.
        files: ``micromotion``, ``anchors``, ``strip``, ``record`` → path (empty for
            :func:`discover_latents`, which writes the micromotion file alone).
        record: The provenance written as ``NAME.json``.
        anchors: ``[n, num_ws, w_dim]`` the anchors.
        notes: Things the caller may want to show (skipped video frames, defaults used).
        psnr: Per-anchor reconstruction PSNR in dB (video anchors).
    """

    micromotion: Micromotion
    files: dict[str, Path]
    record: dict[str, Any]
    anchors: torch.Tensor
    notes: tuple[str, ...] = ()
    psnr: torch.Tensor | None = None

    @property
    def median_psnr(self) -> float | None:
        """Median reconstruction PSNR of the anchors, in dB (video anchors)."""
        return None if self.psnr is None else float(self.psnr.median())


def discover_text(
    *,
    output: str | os.PathLike[str],
    generator: GeneratorSpec,
    config: TextAnchorConfig | None = None,
    clip: str = DEFAULT_CLIP,
    latent: str | os.PathLike[str] | None = None,
    index: int | None = None,
    id_weights: str | os.PathLike[str] | None = None,
    decomposition: Decomposition | None = None,
    device: str | torch.device = "auto",
    progress: Progress | None = None,
    preset: Mapping[str, Any] | None = None,
) -> Discovery:
    """Optimise one face toward ``config.template`` at each degree (CLIP), then decode it.

    Args:
        output: ``NAME.safetensors``.
        generator: A checkpoint file, a zoo name, or a loaded generator.
        config: Text-anchor settings; the defaults are the paper's.
        clip: CLIP as ``MODEL:WEIGHTS`` (see :func:`micromotion.weights.clip.load_clip`).
        latent: Start from this W+ code (``.npy``) instead of ``config.seed``'s face.
        index: Row of ``latent`` when it holds several codes.
        id_weights: ArcFace IR-SE50 weights for the identity loss; off without.
        decomposition: How the anchors become a micromotion.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        progress: Progress reporting (``text anchors``, per step).
        preset: The record of a preset the settings come from
            (:func:`micromotion.pipelines.presets.resolve_preset`); checked against
            ``config``, ``clip`` and ``decomposition`` and stored in the file and record.

    Returns:
        The micromotion, its files and record.
    """
    # Step 0 — check inputs: everything the user can get wrong fails before a network loads.
    clip_files = clip.split(":", 1) if isinstance(clip, str) else []
    outputs = discovery_outputs(Path(output), reads=[latent, id_weights, generator, *clip_files])
    out = outputs.files["micromotion"]
    config = config or TextAnchorConfig()
    decomposition = decomposition or Decomposition()
    prompts = format_prompts(config.template, config.degrees)
    if preset is not None:
        check_preset(preset, "text", {**config.to_dict(), **decomposition.settings(), "clip": clip})
        preset = _preset_record(preset, id_off=id_weights is None or config.id_lambda == 0)
    if id_weights is not None:
        require_file(id_weights, what="an IR-SE50 weights file")
    if index is not None and latent is None:
        raise ParameterError.worded(
            "{index} picks a row of {latent}; give {latent} W.npy", "index", "latent"
        )
    if latent is not None:
        require_file(latent, what="a .npy code")
    notes = []
    if id_weights is None:
        notes.append(
            "no --id-weights given: the identity loss is off "
            "(the paper uses ArcFace IR-SE50, model_ir_se50.pth)"
        )
    # CLIP first: missing weights (offline) must fail before the generator is read.
    where = generator.w_avg.device if isinstance(generator, Generator) else resolve_device(device)
    clip_model = cached("clip", clip, where, lambda: load_clip(clip, device=where))
    G, spec = open_generator(generator, device)
    decomposition.check_layers(G.num_ws)
    id_model = None
    if id_weights is not None and config.id_lambda > 0:
        irse = cached(
            "irse50", id_weights, G.w_avg.device,
            lambda: load_irse50(id_weights, device=G.w_avg.device),
        )  # fmt: skip
        id_model = IdentityLoss(irse)
    fingerprint = G.fingerprint()
    start_ws = None
    if latent is not None:
        start_ws = read_code(Path(latent), index, num_ws=G.num_ws, w_dim=G.w_dim)

    # Step 1 — anchors: the start code, then one optimised code per prompt.
    batches = -(-len(prompts) // (config.batch_size or len(prompts)))
    result = text_anchors(
        G,
        clip_model,
        prompts,
        config=config,
        start_ws=start_ws,
        id_model=id_model,
        callback=stage_callback(progress, "text anchors", config.steps * batches),
    )

    # Step 2 — robust subspace and the direction.
    settings = config.to_dict()
    if latent is not None:  # neither was used: do not record them as if they had been
        settings.update(seed=None, truncation_psi=None)
    metadata = {
        "template": config.template,
        "degrees": list(config.degrees),
        "prompts": prompts,
        "clip": clip,
        "seed": None if latent is not None else config.seed,
        "truncation_psi": None if latent is not None else config.truncation_psi,
        "identity_loss": id_model is not None,
        **_preset_metadata(preset),
    }
    try:
        mm = decomposition.decode(
            result.anchors,
            out,
            source="text",
            generator_fingerprint=fingerprint,
            metadata=metadata,
        )
    except MicromotionError as exc:
        raise MicromotionError(f"decomposing the text anchors: {exc}") from None
    record = provenance(
        command="discover text",
        name=mm.name,
        template=config.template,
        degrees=list(config.degrees),
        prompts=prompts,
        anchors="start code, then one optimised code per prompt",
        start={"latent": str(latent), "index": index}
        if latent is not None
        else {"seed": config.seed, "truncation_psi": config.truncation_psi},
        settings=settings,
        **decomposition.record(mm, preset),
        clip=clip,
        clip_weights_sha256=clip_model.weights_sha256,
        generator=spec,
        generator_fingerprint=fingerprint,
        id_weights=str(id_weights) if id_weights is not None else None,
        id_weights_sha256=sha256_file(id_weights) if id_weights is not None else None,
        identity_loss=id_model is not None,
        clip_loss_start=[round(float(v), 6) for v in result.start_clip_loss],
        clip_loss_final=[round(float(v), 6) for v in result.clip_loss],
    )
    files = write_discovery(
        outputs, micromotion=mm, anchors=result.anchors, strip_images=result.images, record=record
    )
    return Discovery(mm, files, record, result.anchors, tuple(notes))


def discover_video(
    video: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str],
    generator: GeneratorSpec,
    config: VideoAnchorConfig | None = None,
    align: bool = True,
    lpips: bool | None = None,
    inverter: InverterSettings | None = None,
    decomposition: Decomposition | None = None,
    device: str | torch.device = "auto",
    progress: Progress | None = None,
    preset: Mapping[str, Any] | None = None,
) -> Discovery:
    """Decode a micromotion from a video of one face performing it.

    Frames are picked, aligned (landmarks smoothed over time), inverted one after another with
    warm starts (:func:`micromotion.anchors.video.video_anchors`), and decomposed by robust PCA.

    Args:
        video: The clip (anything ffmpeg reads).
        output: ``NAME.safetensors``.
        generator: A checkpoint file, a zoo name, or a loaded generator.
        config: Frame picking and inversion settings.
        align: FFHQ-align each frame; ``False`` for videos of aligned crops.
        lpips: Inversion loss choice (see :func:`micromotion.pipelines.losses.select_loss`).
        inverter: Projector or encoder for the frames (default ``auto``: the paper's
            ReStyle-pSp for the paper's network, else the projector).
        decomposition: How the anchors become a micromotion.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        progress: Progress reporting (``decode``, ``align``, ``invert``, per frame).
        preset: The record of a preset the settings come from (see :func:`discover_text`).

    Returns:
        The micromotion, its files and record; ``notes`` lists skipped frames.
    """
    # Step 0 — check inputs before the generator is loaded.
    outputs = discovery_outputs(Path(output), reads=[video, generator])
    out = outputs.files["micromotion"]
    video = Path(video)
    config = config or VideoAnchorConfig()
    decomposition = decomposition or Decomposition()
    info = probe_video(video)
    pick_frames(info, config)  # too few frames fails before the generator loads
    if align:
        check_backend()
    inverter = inverter or InverterSettings()
    if preset is not None:
        actual = {
            **decomposition.settings(),
            "iterations": inverter.iterations,
            "refine": inverter.refine,
        }
        check_preset(preset, "video", actual)
        preset = _preset_record(preset)
    if inverter.alignment == "paper":
        raise ParameterError.worded(
            "{alignment} paper is not available for videos yet (frames are aligned with "
            "temporal smoothing); use {alignment} ours",
            "alignment",
        )
    G, spec = open_generator(generator, device)
    decomposition.check_layers(G.num_ws)  # a bad layer list fails before the long inversion
    fingerprint = G.fingerprint()
    encoder = open_inverter(inverter, generator, G.w_avg.device)
    loss_fn, loss_name = select_loss(device=G.w_avg.device, lpips=lpips)

    # Step 1 — anchors: one inverted code per usable frame.
    result = video_anchors(
        G,
        video,
        config=config,
        align=align,
        loss_fn=loss_fn,
        progress=None if progress is None else lambda s, d, t: progress(s, d, t, ""),
        info=info,
        encoder=encoder,
        iterations=inverter.iterations,
        refine=inverter.refine,
    )
    notes = tuple(f"skipped frame {i}: {reason}" for i, reason in result.skipped.items())

    # Step 2 — robust subspace and the direction.
    meta = {
        "video": video.name,
        "video_sha256": sha256_file(video),
        "frame_indices": result.frame_indices,
        "fps": info.fps,
        **_preset_metadata(preset),
    }
    mm = decomposition.decode(
        result.anchors, out, source="video", generator_fingerprint=fingerprint, metadata=meta
    )
    record = provenance(
        command="discover video",
        video=str(video),
        video_sha256=meta["video_sha256"],
        video_info={"fps": info.fps, "frames": info.num_frames, "size": [info.width, info.height]},
        frame_indices=result.frame_indices,
        skipped={str(k): v for k, v in result.skipped.items()},
        psnr_db=[round(float(v), 3) for v in result.psnr],
        aligned=align,
        settings=config.to_dict(),
        loss=loss_name,
        inverter={"method": "projector"}
        if encoder is None
        else {
            "method": encoder.method,
            "encoder": dict(encoder.source),
            "iterations": inverter.iterations,
            "refine": inverter.refine,
        },
        **decomposition.record(mm, preset),
        generator=spec,
        generator_fingerprint=fingerprint,
    )
    pick = np.unique(np.linspace(0, len(result.frame_indices) - 1, STRIP_TILES).round())
    tiles = np.concatenate([result.aligned, result.reconstructions], axis=1)[pick.astype(int)]
    files = write_discovery(
        outputs, micromotion=mm, anchors=result.anchors, strip_images=tiles, record=record
    )
    return Discovery(mm, files, record, result.anchors, notes, psnr=result.psnr)


def discover_latents(
    anchors: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str],
    decomposition: Decomposition | None = None,
    generator_fingerprint: str | None = None,
    preset: Mapping[str, Any] | None = None,
) -> Discovery:
    """Decode a micromotion from saved anchors ``[n, num_ws, w_dim]`` (a ``.npy``, motion order).

    Writes the micromotion file alone (the anchors are already on disk).

    Args:
        anchors: The ``.npy`` file.
        output: ``NAME.safetensors``.
        decomposition: How the anchors become a micromotion.
        generator_fingerprint: sha256 of the generator the anchors belong to, to record.
        preset: The record of a preset the settings come from (see :func:`discover_text`).
    """
    out = check_output(Path(output))
    outputs = OutputSet({"micromotion": out}, reads=[anchors])
    decomposition = decomposition or Decomposition()
    if preset is not None:
        check_preset(preset, "latents", decomposition.settings())
        preset = _preset_record(preset)
    path = Path(anchors)
    array = load_float_npy(path, what="anchors")
    if array.ndim == 3:
        decomposition.check_layers(array.shape[1])  # before the decomposition
    codes = torch.from_numpy(np.array(array, dtype=np.float32))
    try:
        mm = decomposition.decode(
            codes,
            out,
            source="latents",
            generator_fingerprint=generator_fingerprint,
            metadata={"anchors_file": str(path), **_preset_metadata(preset)},
        )
    except MicromotionError as exc:
        raise MicromotionError(f"{path}: {exc}") from None
    with outputs:
        mm.save(outputs.path("micromotion"))
    return Discovery(mm, {"micromotion": out}, dict(mm.metadata), codes)


def _preset_record(preset: Mapping[str, Any], *, id_off: bool = False) -> dict[str, Any]:
    """The preset's record, with what this run could not do as the recipe asks."""
    record = dict(preset)
    if id_off and preset.get("name") == "paper":
        record["notes"] = [
            *record.get("notes", []),
            "the identity loss is off (no id_weights): the paper's code used ArcFace IR-SE50",
        ]
    return record


def _preset_metadata(preset: Mapping[str, Any] | None) -> dict[str, Any]:
    """The preset facts a micromotion file keeps in its metadata (none without a preset)."""
    if preset is None:
        return {}
    return {
        "preset": preset["name"],
        "preset_overrides": dict(preset.get("overrides") or {}),
        "preset_notes": list(preset.get("notes") or []),
    }


def parse_rank(text: str | int) -> int | Literal["auto"]:
    """Parse a rank given as text (or already an integer): a positive integer or ``auto``."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 1:
            raise ParameterError("rank", f"{text!r}: must be at least 1")
        return text
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise ParameterError("rank", f"{text!r}: expected an integer or auto") from None
    if value < 1:
        raise ParameterError("rank", f"{text!r}: must be at least 1")
    return value


__all__ = [
    "STRIP_TILES",
    "Decomposition",
    "Discovery",
    "discover_latents",
    "discover_text",
    "discover_video",
    "parse_rank",
]
