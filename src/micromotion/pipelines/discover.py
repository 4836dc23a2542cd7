"""Discover a micromotion: anchors (step 1) → robust subspace (step 2), from text, video or codes.

Each pipeline reads like the paper: it checks its inputs up front, builds the anchors, decodes
the micromotion, and writes ``NAME.safetensors`` with ``NAME_anchors.npy``, ``NAME_strip.png``
and ``NAME.json`` — all four or none (:func:`micromotion.pipelines.outputs.write_discovery`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from micromotion.anchors.text import (
    TextAnchorConfig,
    format_prompts,
    multi_text_anchors,
    text_anchors,
)
from micromotion.anchors.video import VideoAnchorConfig, pick_frames, video_anchors
from micromotion.core.devices import resolve_device
from micromotion.core.io import load_float_npy, require_file, sha256_file
from micromotion.core.progress import Progress, stage_callback
from micromotion.core.provenance import provenance
from micromotion.core.seeds import MAX_SEED
from micromotion.errors import MicromotionError, ParameterError
from micromotion.faces import check_backend
from micromotion.media.video_in import probe_video
from micromotion.networks.clip import ClipModel
from micromotion.networks.irse import IdentityLoss
from micromotion.networks.sampling import sample_ws
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
from micromotion.render.codes import clip_codes
from micromotion.render.metrics import identity_similarity
from micromotion.subspace.direction import Method
from micromotion.subspace.layers import layer_mask
from micromotion.subspace.micromotion import Micromotion
from micromotion.weights.clip import DEFAULT_CLIP, load_clip
from micromotion.weights.irse import load_irse50

#: The video preview shows at most this many frames, evenly picked.
STRIP_TILES = 16
#: Most faces one multi-identity text discovery optimises (each is a full text optimisation).
MAX_FACES = 64
#: Held-out faces the transfer check uses when none are named.
HELD_OUT_FACES = 4
#: Frames of each held-out clip the transfer check renders (start to full strength).
TRANSFER_FRAMES = 5


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
        """Decode the micromotion of ``anchors`` ``[n, num_ws, w_dim]`` (``[F, n, …]``: F faces).

        Raises:
            MicromotionError: For anchors without motion (all identical) or a decoded
                direction that is zero, as well as the decomposition's own errors.
        """
        if anchors.ndim == 3 and anchors.shape[0] >= 3 and bool((anchors == anchors[:1]).all()):
            raise MicromotionError(
                f"all {anchors.shape[0]} anchors are identical: there is no motion to decode"
            )
        if anchors.ndim == 4 and anchors.shape[1] >= 3 and bool((anchors == anchors[:, :1]).all()):
            raise MicromotionError(
                "every face's anchors are identical: there is no motion to decode"
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
        anchors: ``[n, num_ws, w_dim]`` the anchors (``[F, n, num_ws, w_dim]`` for text
            anchors of several faces).
        notes: Things the caller may want to show (skipped video frames, defaults used).
        psnr: Per-anchor reconstruction PSNR in dB (video anchors).
        transfer: For several faces, the transfer check (see :func:`discover_text`).
    """

    micromotion: Micromotion
    files: dict[str, Path]
    record: dict[str, Any]
    anchors: torch.Tensor
    notes: tuple[str, ...] = ()
    psnr: torch.Tensor | None = None
    transfer: dict[str, Any] | None = None

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
    seeds: Sequence[int] | None = None,
    held_out: Sequence[int] | None = None,
) -> Discovery:
    """Optimise one face toward ``config.template`` at each degree (CLIP), then decode it.

    With ``seeds``, every face is optimised (faces × degrees in one batch), each face's
    anchors are centred on their own mean and decomposed jointly
    (:meth:`Micromotion.from_anchors` on ``[F, n, num_ws, w_dim]``), and the micromotion is
    checked against the one-face micromotion of the first seed's anchors (the same
    decomposition settings, no extra optimisation) on held-out faces: each micromotion moves
    every held-out face over :data:`TRANSFER_FRAMES` frames, both at the same edit length
    (``‖d‖`` of the one-face micromotion, i.e. its own strength 1), and the record's
    ``transfer`` holds

    * ``clip_gain``: how much more the last frame than the first matches the template's last
      degree relative to its first, ``Δ[cos(I, T_last) − cos(I, T_first)]`` (CLIP), averaged
      over the held-out faces, for both micromotions, and ``improvement`` (joint − one face);
    * ``identity`` (with ``id_weights``): ArcFace cosine of the last frame to the first;
    * ``cosine``: between the two (masked) directions, and each training face's own
      direction against the joint one.

    On tiny random networks these numbers check the machinery, nothing more.

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
        seeds: Several start faces (instead of ``config.seed`` and ``latent``): one joint
            micromotion; ``NAME_anchors.npy`` is then ``[F, n, num_ws, w_dim]`` and the strip
            has one row per face.
        held_out: Seeds of the faces the transfer check uses (with ``seeds``; none of them a
            training seed). Default: the :data:`HELD_OUT_FACES` seeds after the largest one.

    Returns:
        The micromotion, its files and record (``transfer`` with ``seeds``).
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
    if seeds is not None:
        seeds, held_out = _check_faces(seeds, held_out, latent=latent)
    elif held_out is not None:
        raise ParameterError.worded(
            "{held_out} names the faces a joint micromotion is checked on; give {seeds} too",
            "held_out", "seeds",
        )  # fmt: skip
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

    # Step 1 — anchors: the start code, then one optimised code per prompt (per face).
    codes = len(prompts) * (1 if seeds is None else len(seeds))
    batches = -(-codes // (config.batch_size or codes))
    callback = stage_callback(progress, "text anchors", config.steps * batches)
    if seeds is None:
        result = text_anchors(
            G,
            clip_model,
            prompts,
            config=config,
            start_ws=start_ws,
            id_model=id_model,
            callback=callback,
        )
    else:
        result = multi_text_anchors(
            G, clip_model, prompts, seeds=seeds, config=config, id_model=id_model,
            callback=callback,
        )  # fmt: skip

    # Step 2 — robust subspace and the direction (jointly over the faces, with seeds).
    settings = config.to_dict()
    if latent is not None:  # neither was used: do not record them as if they had been
        settings.update(seed=None, truncation_psi=None)
    if seeds is not None:
        settings.update(seed=None, seeds=list(seeds))
    metadata = {
        "template": config.template,
        "degrees": list(config.degrees),
        "prompts": prompts,
        "clip": clip,
        "seed": None if latent is not None or seeds is not None else config.seed,
        "truncation_psi": None if latent is not None else config.truncation_psi,
        "identity_loss": id_model is not None,
        **({} if seeds is None else {"seeds": list(seeds)}),
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

    # Step 3 — transfer: joint against one face, on faces neither saw.
    transfer = None
    faces: dict[str, Any] = {}
    if seeds is not None:
        assert held_out is not None  # filled in by _check_faces
        single = decomposition.decode(
            result.anchors[0], out, source="text", generator_fingerprint=fingerprint,
            metadata={**metadata, "seeds": [seeds[0]], "seed": seeds[0]},
        )  # fmt: skip
        scorer = id_model
        if scorer is None and id_weights is not None:  # scored even when the loss was off
            irse = cached(
                "irse50", id_weights, G.w_avg.device,
                lambda: load_irse50(id_weights, device=G.w_avg.device),
            )  # fmt: skip
            scorer = IdentityLoss(irse)
        transfer = _transfer_check(
            G, clip_model, prompts, config, mm, single, result.anchors, held_out,
            decomposition=decomposition, id_model=scorer,
        )  # fmt: skip
        faces = {"seeds": list(seeds), "held_out": list(held_out), "transfer": transfer}
    record = provenance(
        command="discover text",
        name=mm.name,
        template=config.template,
        degrees=list(config.degrees),
        prompts=prompts,
        anchors="start code, then one optimised code per prompt",
        start={"latent": str(latent), "index": index}
        if latent is not None
        else {"seeds": list(seeds), "truncation_psi": config.truncation_psi}
        if seeds is not None
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
        clip_loss_start=result.start_clip_loss.double().round(decimals=6).tolist(),
        clip_loss_final=result.clip_loss.double().round(decimals=6).tolist(),
        **faces,
    )
    # The strip: the start code, then one tile per degree; one row per face with --seeds.
    files = write_discovery(
        outputs, micromotion=mm, anchors=result.anchors, strip_images=result.images,
        record=record, labels=["start", *config.degrees],
        row_labels=None if seeds is None else [f"seed {s}" for s in seeds],
    )  # fmt: skip
    return Discovery(mm, files, record, result.anchors, tuple(notes), transfer=transfer)


def _check_faces(
    seeds: Sequence[int], held_out: Sequence[int] | None, *, latent: object
) -> tuple[list[int], list[int]]:
    """The training and held-out seeds of a multi-face discovery, checked."""
    if latent is not None:
        raise ParameterError.worded("give {seeds} or {latent}, not both", "seeds", "latent")
    train = _seed_list("seeds", seeds)
    if len(train) > MAX_FACES:
        raise ParameterError(
            "seeds", f"{len(train)} faces: at most {MAX_FACES} (each is a full text optimisation)"
        )
    if held_out is None:
        top = max(train)
        test = [s for s in range(top + 1, top + 1 + HELD_OUT_FACES) if s <= MAX_SEED]
        if not test:  # the largest seed is the largest there is: count down instead
            test = [s for s in range(MAX_SEED, -1, -1) if s not in train][:HELD_OUT_FACES]
    else:
        test = _seed_list("held_out", held_out)
        if len(test) > MAX_FACES:
            raise ParameterError("held_out", f"{len(test)} faces: at most {MAX_FACES}")
        shared = sorted(set(test) & set(train))
        if shared:
            raise ParameterError(
                "held_out", f"{','.join(map(str, shared))}: also a training seed, so not held out"
            )
    return train, test


def _seed_list(param: str, seeds: Sequence[int]) -> list[int]:
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Sequence):
        raise ParameterError(param, f"{seeds!r}: expected a list of seeds")
    out = list(seeds)
    if not out:
        raise ParameterError(param, "give at least one seed")
    for seed in out:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise ParameterError(param, f"{seed!r}: seeds are integers from 0 to {MAX_SEED}")
    if len(set(out)) != len(out):
        raise ParameterError(param, f"{out}: a seed is repeated")
    return out


def _transfer_check(
    G: Generator,
    clip: ClipModel,
    prompts: Sequence[str],
    config: TextAnchorConfig,
    joint: Micromotion,
    single: Micromotion,
    anchors: torch.Tensor,
    held_out: Sequence[int],
    *,
    decomposition: Decomposition,
    id_model: IdentityLoss | None,
) -> dict[str, Any]:
    """Score the joint and the one-face micromotion on held-out faces (see :func:`discover_text`).

    Args:
        G: The generator.
        clip: CLIP (the one the anchors were optimised with).
        prompts: The prompts; the first and last are the motion's two ends.
        config: The text-anchor settings (truncation, noise, CLIP input).
        joint: The joint micromotion.
        single: The one-face micromotion of the first seed's anchors.
        anchors: ``[F, n, num_ws, w_dim]`` the training faces' anchors (for the per-face
            agreement with the joint direction).
        held_out: Seeds of the faces to move.
        decomposition: The decomposition settings (for each training face's own direction).
        id_model: ArcFace, to score identity; ``None`` skips it.

    Returns:
        The record's ``transfer`` entry.
    """
    device = G.w_avg.device
    with torch.no_grad():
        text = clip.text_embeds([prompts[0], prompts[-1]]).double()  # [2, D]
    towards = text[1] - text[0]  # [D]: cos to the last degree minus cos to the first
    ws = sample_ws(G, list(held_out), truncation_psi=config.truncation_psi)  # [H, L, C]
    # Same edit length for both: a longer direction would move faces further and win on
    # that alone. The one-face micromotion keeps its own strength 1 (first → last anchor).
    length = single.norm
    strengths = {"joint": length / joint.norm, "single_face": 1.0}
    scores: dict[str, dict[str, Any]] = {}
    for key, mm in (("joint", joint), ("single_face", single)):
        codes = torch.stack(
            [clip_codes(w, [(mm, strengths[key])], frames=TRANSFER_FRAMES) for w in ws]
        ).to(device)  # [H, T, L, C]
        with torch.no_grad():
            frames = torch.stack(
                [G.synthesis(c, noise_mode=config.noise_mode).clamp(-1, 1) for c in codes]
            )  # [H, T, 3, R, R]
            emb = clip.image_embeds(frames.flatten(0, 1), normalize=config.clip_normalize)
        margin = (emb.double() @ towards).reshape(len(held_out), TRANSFER_FRAMES)  # [H, T]
        gain = margin[:, -1] - margin[:, 0]  # [H]
        entry: dict[str, Any] = {
            "clip_gain": round(float(gain.mean()), 6),
            "clip_gain_per_face": [round(float(g), 6) for g in gain],
        }
        if id_model is not None:
            last = torch.stack([identity_similarity(id_model, f)[-1] for f in frames])  # [H]
            entry["identity"] = round(float(last.mean()), 6)
            entry["identity_per_face"] = [round(float(v), 6) for v in last]
        scores[key] = entry
    per_face = [
        _cosine(
            decomposition.decode(
                face, Path("face.safetensors"), source="text", generator_fingerprint=None,
                metadata={},
            ),
            joint,
        )
        for face in anchors
    ]  # fmt: skip
    return {
        "held_out": list(held_out),
        "frames": TRANSFER_FRAMES,
        "edit_length": round(length, 6),
        "strength": {k: round(v, 6) for k, v in strengths.items()},
        "joint": scores["joint"],
        "single_face": {"seed_index": 0, **scores["single_face"]},
        "improvement": {
            "clip_gain": round(
                scores["joint"]["clip_gain"] - scores["single_face"]["clip_gain"], 6
            ),
            **(
                {
                    "identity": round(
                        scores["joint"]["identity"] - scores["single_face"]["identity"], 6
                    )
                }
                if id_model is not None
                else {}
            ),
        },
        "cosine": round(_cosine(joint, single), 6),
        "cosine_per_face": [round(c, 6) for c in per_face],
        "note": "CLIP and identity scores of tiny random networks only check the machinery",
    }


def _cosine(a: Micromotion, b: Micromotion) -> float:
    """Cosine between two micromotions' masked directions, all layers flattened."""
    x, y = a.masked_direction.double().flatten(), b.masked_direction.double().flatten()
    return float(x @ y / (x.norm() * y.norm()).clamp_min(1e-300))


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
            # How frames are fitted, for a preset that fixes them.
            "space": config.space,
            "w_reg": config.w_reg,
            "clip_aware": config.clip_aware,
        }
        check_preset(preset, "video", actual)
        preset = _preset_record(preset)
    if inverter.alignment == "paper" and not align:
        raise ParameterError.worded(
            "{alignment} paper redoes the alignment; it cannot be combined with {align}=False",
            "alignment",
            "align",
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
        alignment=inverter.alignment,
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
            "alignment": inverter.alignment,
        },
        **decomposition.record(mm, preset),
        generator=spec,
        generator_fingerprint=fingerprint,
    )
    pick = np.unique(np.linspace(0, len(result.frame_indices) - 1, STRIP_TILES).round())
    tiles = np.concatenate([result.aligned, result.reconstructions], axis=1)[pick.astype(int)]
    files = write_discovery(
        outputs, micromotion=mm, anchors=result.anchors, strip_images=tiles, record=record,
        labels=[f"frame {result.frame_indices[i]}" for i in pick.astype(int)],
    )  # fmt: skip
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

    Anchors of several faces, ``[F, n, num_ws, w_dim]`` (``discover text --seeds``), are
    decoded jointly, as :func:`discover_text` does.

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
    if array.ndim in (3, 4):  # [n, num_ws, w_dim], or [F, n, num_ws, w_dim] for F faces
        decomposition.check_layers(array.shape[-2])  # before the decomposition
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
    "HELD_OUT_FACES",
    "MAX_FACES",
    "STRIP_TILES",
    "TRANSFER_FRAMES",
    "Decomposition",
    "Discovery",
    "discover_latents",
    "discover_text",
    "discover_video",
    "parse_rank",
]
