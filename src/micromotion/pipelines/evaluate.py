"""Evaluate micromotions: render clips along them and score smoothness, identity, text, subspace.

:func:`evaluate` scores one micromotion on one face and writes ``OUT.json``; :func:`compare`
scores several side by side on the same faces and strengths, averages over the faces with
their spread, adds the cosine between every pair of directions (transfer consistency), and
can draw the main curves as one PNG.

What a clip is scored on:

* smoothness: pixel RMSE (and LPIPS with ``lpips=True``) between consecutive frames, and
  their spread;
* identity (with ``id_weights``, ArcFace IR-SE50): each frame's cosine to frame 0, and the
  temporal consistency of STIT (Tzaban et al. 2022): TL-ID (adjacent frames) and TG-ID (all
  pairs), each also measured on the unedited clip (strength 0, the same frames) and given
  relative to it;
* text (with ``clip``, for a micromotion decoded from text, or any micromotion given a
  ``template``): CLIP cosine of each frame to the prompt of its degree (frame ``i`` ↔ the
  degree nearest ``i/(frames−1)``) and the CLIP directional similarity of the clip's change
  to the text's change ``template(last degree) − template(first degree)``;
* subspace, for micromotions decoded from anchors: explained energy at the file's rank and
  RPCA's sparse fraction per layer.

A null edit (strength 0) scores distance 0, identity 1 and TL-ID = TG-ID = 1 (relative 1).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from micromotion.core.defaults import DEFAULT_DEGREES
from micromotion.core.io import require_file, sha256_file
from micromotion.core.numbers import check_real
from micromotion.core.outputs import OutputSet, input_files
from micromotion.core.progress import Progress
from micromotion.core.provenance import provenance
from micromotion.core.seeds import MAX_SEED
from micromotion.errors import MicromotionError, ParameterError
from micromotion.media.images import save_png
from micromotion.networks.clip import ClipModel
from micromotion.networks.irse import IdentityLoss
from micromotion.networks.lpips import perceptual_loss
from micromotion.networks.sampling import sample_ws
from micromotion.networks.stylegan2 import Generator
from micromotion.pipelines._load import GeneratorSpec, cached, open_generator
from micromotion.pipelines.evaluate_plot import draw_comparison
from micromotion.pipelines.latents import read_code
from micromotion.pipelines.outputs import save_record
from micromotion.render.codes import clip_codes
from micromotion.render.metrics import (
    Distance,
    clip_image_embeddings,
    degree_positions,
    directional_similarity,
    frame_degrees,
    frame_distances,
    identity_embeddings,
    spread,
    temporal_identity,
    text_alignment,
)
from micromotion.subspace.metrics import direction_cosine, subspace_report
from micromotion.subspace.micromotion import Micromotion
from micromotion.weights.clip import load_clip
from micromotion.weights.irse import load_irse50
from micromotion.weights.lpips import load_lpips
from micromotion.weights.micromotion import load_micromotion

#: Frames rendered per synthesis pass.
_BATCH = 8
#: Micromotions one comparison may hold (each is rendered on every face).
MAX_COMPARED = 16

MicromotionSpec = str | os.PathLike[str] | Micromotion


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` or :func:`compare` wrote.

    Attributes:
        report: The scores (also the JSON file's content).
        files: ``{"report": path}``, and ``"plot"`` when a plot was drawn.
    """

    report: dict[str, Any]
    files: dict[str, Path]


@dataclass
class _Scorers:
    """The networks that score a clip, each ``None`` when its metric is off."""

    lpips: Distance | None
    identity: IdentityLoss | None
    clip: ClipModel | None


@dataclass(frozen=True)
class _Text:
    """The text a clip is scored against: prompts, their positions, their embeddings."""

    template: str
    degrees: list[str]
    prompts: list[str]
    positions: list[float]
    embeddings: torch.Tensor  # [P, D] unit norm, float64, CPU


def evaluate(
    micromotion: MicromotionSpec,
    *,
    output: str | os.PathLike[str],
    generator: GeneratorSpec,
    seed: int = 0,
    latent: str | os.PathLike[str] | None = None,
    index: int | None = None,
    truncation_psi: float = 0.7,
    strength: float = 5.0,
    frames: int = 16,
    id_weights: str | os.PathLike[str] | None = None,
    lpips: bool = False,
    clip: str | ClipModel | None = None,
    template: str | None = None,
    degrees: Sequence[str] | None = None,
    device: str | torch.device = "auto",
    progress: Progress | None = None,
) -> Evaluation:
    """Render ``frames`` codes ``w + (i/(frames−1))·strength·d`` and score the clip.

    Args:
        micromotion: A micromotion file, zoo name, or loaded micromotion.
        output: ``NAME.json``.
        generator: A checkpoint file, a zoo name, or a loaded generator.
        seed: The start face's seed (unless ``latent``).
        latent: Start from this W+ code (``.npy``) instead.
        index: Row of ``latent`` when it holds several codes.
        truncation_psi: Truncation of the seed's face.
        strength: Strength at the last frame.
        frames: Frames in the clip (≥ 2).
        id_weights: ArcFace IR-SE50 weights: identity against frame 0, TL-ID and TG-ID
            (skipped without).
        lpips: Also measure LPIPS-VGG between consecutive frames (its weights come from the
            zoo's cache or are downloaded).
        clip: CLIP as ``MODEL:WEIGHTS`` or a loaded one: score the frames against the text
            (the micromotion's own template and degrees, or ``template``); skipped without.
        template: Score against this ``{degree}`` template instead of the micromotion's own.
        degrees: The degree words for ``template`` (default the paper's ``no, 10%, …, 100%``).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        progress: Progress reporting (``render``, per frame).

    Returns:
        The report and its file.
    """
    found = _run(
        [micromotion], output=output, generator=generator, seeds=[seed], latent=latent,
        index=index, truncation_psi=truncation_psi, strength=strength, frames=frames,
        id_weights=id_weights, lpips=lpips, clip=clip, template=template, degrees=degrees,
        plot=None, device=device, progress=progress, single=True,
    )  # fmt: skip
    return found


def compare(
    micromotions: Sequence[MicromotionSpec],
    *,
    output: str | os.PathLike[str],
    generator: GeneratorSpec,
    seeds: Sequence[int] = (0,),
    latent: str | os.PathLike[str] | None = None,
    index: int | None = None,
    truncation_psi: float = 0.7,
    strength: float | Sequence[float] = 5.0,
    frames: int = 16,
    id_weights: str | os.PathLike[str] | None = None,
    lpips: bool = False,
    clip: str | ClipModel | None = None,
    template: str | None = None,
    degrees: Sequence[str] | None = None,
    plot: str | os.PathLike[str] | None = None,
    device: str | torch.device = "auto",
    progress: Progress | None = None,
) -> Evaluation:
    """Score several micromotions side by side on the same faces and strengths.

    Each micromotion gets a section: per face, the scores :func:`evaluate` gives; over the
    faces, the mean, standard deviation, minimum and maximum of each summary number and the
    mean ± std curve of each per-frame score. ``transfer_consistency`` holds the cosine of
    every pair of directions over the layers both move (1 for the same direction, −1 for its
    negation; ``null`` when they share no moved layer).

    Args:
        micromotions: One or more micromotion files, zoo names or loaded micromotions (the
            same one twice is allowed: its two sections are then equal).
        output: ``NAME.json``.
        generator: A checkpoint file, a zoo name, or a loaded generator.
        seeds: The start faces (each micromotion is rendered on every one).
        latent: Start from this W+ code (``.npy``) instead of seeds.
        index: Row of ``latent`` when it holds several codes.
        truncation_psi: Truncation of the seeds' faces.
        strength: Strength at the last frame: one for all, or one per micromotion (their
            units differ: a SeFa direction has unit norm, a decoded one the anchors' span).
        frames: Frames in each clip (≥ 2).
        id_weights: ArcFace IR-SE50 weights (identity metrics skipped without).
        lpips: Also LPIPS-VGG between consecutive frames.
        clip: CLIP as ``MODEL:WEIGHTS`` or a loaded one (text metrics skipped without).
        template: Score every micromotion against this ``{degree}`` template; default: each
            text micromotion against its own, the others not at all.
        degrees: The degree words for ``template`` (default the paper's).
        plot: Also draw the main metrics against frame and strength as this ``.png``.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        progress: Progress reporting (``render``, per frame).

    Returns:
        The report and its files.
    """
    return _run(
        micromotions, output=output, generator=generator, seeds=seeds, latent=latent,
        index=index, truncation_psi=truncation_psi, strength=strength, frames=frames,
        id_weights=id_weights, lpips=lpips, clip=clip, template=template, degrees=degrees,
        plot=plot, device=device, progress=progress, single=False,
    )  # fmt: skip


def _run(
    micromotions: Sequence[MicromotionSpec],
    *,
    output: str | os.PathLike[str],
    generator: GeneratorSpec,
    seeds: Sequence[int],
    latent: str | os.PathLike[str] | None,
    index: int | None,
    truncation_psi: float,
    strength: float | Sequence[float],
    frames: int,
    id_weights: str | os.PathLike[str] | None,
    lpips: bool,
    clip: str | ClipModel | None,
    template: str | None,
    degrees: Sequence[str] | None,
    plot: str | os.PathLike[str] | None,
    device: str | torch.device,
    progress: Progress | None,
    single: bool,
) -> Evaluation:
    # Step 0 — check inputs before any network loads.
    out = Path(output)
    if out.suffix != ".json" or out.name == ".json":
        raise MicromotionError(f"{out}: the report must be NAME.json")
    files: dict[str, Path] = {"report": out}
    if plot is not None:
        plot_path = Path(plot)
        if plot_path.suffix.lower() != ".png" or plot_path.name.lower() == ".png":
            raise ParameterError("plot", f"{plot_path}: the plot must be NAME.png")
        files["plot"] = plot_path
    if isinstance(micromotions, str | os.PathLike | Micromotion) or not micromotions:
        raise ParameterError("micromotions", "give a list of one or more micromotions")
    if len(micromotions) > MAX_COMPARED:
        raise ParameterError(
            "micromotions", f"{len(micromotions)} given: compare at most {MAX_COMPARED}"
        )
    clip_files = clip.split(":", 1) if isinstance(clip, str) else []
    reads = [generator, latent, id_weights, *clip_files]
    reads += [m for m in micromotions if not isinstance(m, Micromotion)]
    outputs = OutputSet(files, reads=input_files(*reads))
    strengths = _strengths(strength, len(micromotions))
    truncation_psi = check_real("truncation_psi", truncation_psi, low=0, high=2)
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 2:
        raise ParameterError("frames", f"{frames!r}: need at least 2 frames")
    seeds = list(seeds)
    if not seeds:
        raise ParameterError("seeds", "give at least one seed")
    for face in seeds:
        if isinstance(face, bool) or not isinstance(face, int) or not 0 <= face <= MAX_SEED:
            raise ParameterError("seed", f"{face!r}: must be an integer from 0 to {MAX_SEED}")
    if index is not None and latent is None:
        raise ParameterError.worded("{index} picks a row of {latent}", "index", "latent")
    if latent is not None:
        require_file(latent, what="a .npy code")
    if id_weights is not None:
        require_file(id_weights, what="an IR-SE50 weights file")
    if template is not None and "{degree}" not in template:
        raise ParameterError("template", f"{template!r}: must contain {{degree}}")
    if degrees is not None and (isinstance(degrees, str) or len(degrees) < 2):
        raise ParameterError("degrees", "give two or more degree words, in motion order")
    if degrees is not None and template is None:
        raise ParameterError.worded("{degrees} go with {template}", "degrees", "template")
    mms = [m if isinstance(m, Micromotion) else load_micromotion(m) for m in micromotions]
    G, spec = open_generator(generator, device)
    where = G.w_avg.device
    fingerprint = G.fingerprint()
    for mm in mms:
        mm.check_compatible(num_ws=G.num_ws, w_dim=G.w_dim, fingerprint=fingerprint)
    scorers = _load_scorers(lpips=lpips, id_weights=id_weights, clip=clip, where=where)
    texts = [_text_of(mm, scorers.clip, template, degrees) for mm in mms]

    # Step 1 — the start faces, and each one's unedited clip (strength 0, the same frames).
    starts = _starts(G, seeds, latent, index, truncation_psi)  # [(label, w [num_ws, w_dim])]
    total = frames * len(starts) * (len(mms) + (scorers.identity is not None))
    done = [0]

    def render(codes: torch.Tensor) -> torch.Tensor:
        return _render(G, codes, progress, done, total)

    unedited: list[torch.Tensor | None] = []
    for _, w in starts:
        if scorers.identity is None:
            unedited.append(None)
            continue
        still = render(w.expand(frames, -1, -1))  # [T, 3, R, R]
        unedited.append(identity_embeddings(scorers.identity, still))

    # Step 2 — every micromotion on every face, scored.
    sections = []
    for mm, s, text in zip(mms, strengths, texts, strict=True):
        per_start = []
        for (label, w), reference in zip(starts, unedited, strict=True):
            codes = clip_codes(w, [(mm, s)], frames=frames)  # [T, num_ws, w_dim]
            scores = _score(render(codes), scorers, text, reference)
            per_start.append({"start": label, **scores})
        sections.append((mm, s, text, per_start))

    # Step 3 — the report (and the plot), written together.
    common = {
        "generator": spec,
        "generator_fingerprint": fingerprint,
        "frames": frames,
        "id_weights_sha256": sha256_file(id_weights) if id_weights is not None else None,
        "clip": _clip_record(scorers.clip),
    }
    if single:
        mm, s, text, per_start = sections[0]
        only = per_start[0]
        report = provenance(
            command="evaluate",
            micromotion=mm.name,
            micromotion_metadata=_meta(mm),
            **common,
            start=only["start"],
            strength=s,
            smoothness=only["smoothness"],
            identity=only["identity"],
            text_alignment=only["text_alignment"],
            subspace=subspace_report(mm),
        )
    else:
        labels = _labels(mms)
        report = provenance(
            command="evaluate --compare",
            **common,
            starts=[label for label, _ in starts],
            micromotions=[
                _section(label, mm, s, per_start, frames)
                for label, (mm, s, _, per_start) in zip(labels, sections, strict=True)
            ],
            transfer_consistency=_consistency(labels, mms),
        )
    image = None
    if "plot" in files:
        image = draw_comparison(report)
        report["plot"] = {
            "file": str(files["plot"]),
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
        }
    with outputs:
        save_record(outputs.path("report"), report)
        if image is not None:
            # The PNG names its report; the numbers themselves live in the JSON.
            save_png(image, outputs.path("plot"), text={"micromotion": str(files["report"])})
    return Evaluation(report, files)


def _strengths(strength: float | Sequence[float], count: int) -> list[float]:
    if isinstance(strength, int | float):
        values = [strength] * count
    else:
        values = list(strength)
        if len(values) == 1:
            values = values * count
        if len(values) != count:
            raise ParameterError(
                "strength", f"{len(values)} given for {count} micromotions: give one or {count}"
            )
    return [check_real("strength", v) for v in values]


def _load_scorers(
    *,
    lpips: bool,
    id_weights: str | os.PathLike[str] | None,
    clip: str | ClipModel | None,
    where: torch.device,
) -> _Scorers:
    lpips_fn = None
    if lpips:
        lpips_fn = perceptual_loss(
            cached("lpips", "lpips", where, lambda: load_lpips(device=where))
        )
    id_model = None
    if id_weights is not None:
        irse = cached("irse50", id_weights, where, lambda: load_irse50(id_weights, device=where))
        id_model = IdentityLoss(irse)
    clip_model = None
    if isinstance(clip, ClipModel):
        clip_model = clip
    elif clip is not None:
        clip_model = cached("clip", clip, where, lambda: load_clip(clip, device=where))
    return _Scorers(lpips_fn, id_model, clip_model)


def _text_of(
    mm: Micromotion,
    clip: ClipModel | None,
    template: str | None,
    degrees: Sequence[str] | None,
) -> _Text | None:
    """The text ``mm``'s clip is scored against, or ``None`` (no CLIP, or no text)."""
    if clip is None:
        return None
    if template is None:
        if mm.metadata.get("source") != "text":
            return None
        template = str(mm.metadata.get("template", ""))
        degrees = [str(d) for d in mm.metadata.get("degrees") or ()]
        if "{degree}" not in template or len(degrees) < 2:
            raise MicromotionError(
                f"{mm.name}: a text micromotion without its template and degrees in the "
                "metadata; pass --template"
            )
    words = list(degrees or DEFAULT_DEGREES)
    prompts = [template.replace("{degree}", d) for d in words]
    emb = torch.nn.functional.normalize(clip.text_embeds(prompts).double().cpu(), dim=1)
    return _Text(template, words, prompts, degree_positions(words), emb)


def _starts(
    G: Generator,
    seeds: Sequence[int],
    latent: str | os.PathLike[str] | None,
    index: int | None,
    truncation_psi: float,
) -> list[tuple[dict[str, Any], torch.Tensor]]:
    where = G.w_avg.device
    if latent is None:
        ws = sample_ws(G, list(seeds), truncation_psi=truncation_psi)  # [S, num_ws, w_dim]
        return [({"seed": s, "truncation_psi": truncation_psi}, ws[i]) for i, s in enumerate(seeds)]
    w = read_code(Path(latent), index, num_ws=G.num_ws, w_dim=G.w_dim).to(where)
    return [({"latent": str(latent), "index": index}, w)]


def _render(
    G: Generator, codes: torch.Tensor, progress: Progress | None, done: list[int], total: int
) -> torch.Tensor:
    """Frames ``[T, 3, R, R]`` of codes ``[T, num_ws, w_dim]``, float, clamped as seen."""
    images = []
    with torch.inference_mode():
        for start in range(0, len(codes), _BATCH):
            batch = G.synthesis(codes[start : start + _BATCH], noise_mode="const")
            images.append(batch.clamp(-1, 1).float())  # [B, 3, R, R]
            done[0] += len(batch)
            if progress is not None:
                progress("render", done[0], total, "")
    clip = torch.cat(images)  # [T, 3, R, R]
    if not torch.isfinite(clip).all():
        raise MicromotionError("the generator's output is not finite: use a smaller strength")
    return clip


def _score(
    clip: torch.Tensor,
    scorers: _Scorers,
    text: _Text | None,
    unedited: torch.Tensor | None,
) -> dict[str, Any]:
    """Every score of one clip ``[T, 3, R, R]`` (``unedited``: ``[T, D]`` identity embeddings)."""
    pixel = frame_distances(clip)
    smooth: dict[str, Any] = {"pixel_rmse": {"steps": _rounded(pixel), **spread(pixel)}}
    if scorers.lpips is not None:
        with torch.no_grad():
            perceptual = frame_distances(clip, distance=scorers.lpips)
        smooth["lpips"] = {"steps": _rounded(perceptual), **spread(perceptual)}
    identity = None
    if scorers.identity is not None:
        assert unedited is not None
        emb = identity_embeddings(scorers.identity, clip)  # [T, D]
        sim = (emb * emb[:1]).sum(dim=1).clamp(-1, 1)  # [T]
        edited, still = temporal_identity(emb), temporal_identity(unedited)
        identity = {
            "cosine_to_first": _rounded(sim),
            "min": float(sim.min()),
            "mean": float(sim.mean()),
            "temporal": {
                **edited,
                "unedited": still,
                # STIT reports the edited clip's consistency relative to the source clip's.
                "relative": {k: _ratio(edited[k], still[k]) for k in edited},
            },
        }
    text_scores = None
    if text is not None and scorers.clip is not None:
        image = clip_image_embeddings(scorers.clip, clip)  # [T, D]
        assigned = frame_degrees(len(clip), text.positions)
        aligned = text_alignment(image, text.embeddings, assigned)
        first = min(range(len(text.positions)), key=lambda k: (text.positions[k], k))
        last = max(range(len(text.positions)), key=lambda k: (text.positions[k], -k))
        moved = float((image[-1] - image[0]).norm()) > 0
        text_scores = {
            "template": text.template,
            "degrees": text.degrees,
            "degree_positions": text.positions,
            "frame_degree": [text.degrees[k] for k in assigned],
            "clip_similarity": aligned["similarity"],
            "mean": aligned["mean"],
            "matched": aligned["matched"],
            "directional": directional_similarity(
                image[0], image[-1], text.embeddings[first], text.embeddings[last]
            )
            if moved
            else None,  # a null edit has no change to compare with the text's
            "directional_prompts": [text.prompts[first], text.prompts[last]],
        }
    return {"smoothness": smooth, "identity": identity, "text_alignment": text_scores}


def _ratio(value: float, reference: float) -> float | None:
    return value / reference if reference != 0 else None


def _rounded(values: torch.Tensor) -> list[float]:
    return [round(float(v), 8) for v in values]


def _meta(mm: Micromotion) -> dict[str, Any]:
    return {k: mm.metadata.get(k) for k in ("source", "method", "layers")}


def _clip_record(clip: ClipModel | None) -> dict[str, Any] | None:
    if clip is None:
        return None
    return {"spec": clip.spec, "weights_sha256": clip.weights_sha256, "normalize": True}


def _labels(mms: Sequence[Micromotion]) -> list[str]:
    """Each micromotion's name, made unique with ``#2``, ``#3`` for repeats."""
    seen: dict[str, int] = {}
    labels = []
    for mm in mms:
        seen[mm.name] = seen.get(mm.name, 0) + 1
        labels.append(mm.name if seen[mm.name] == 1 else f"{mm.name}#{seen[mm.name]}")
    return labels


#: Summary numbers of each face's scores, by the path to them in the per-face record.
_SUMMARY: dict[str, tuple[str, ...]] = {
    "pixel_step_mean": ("smoothness", "pixel_rmse", "mean"),
    "pixel_step_max": ("smoothness", "pixel_rmse", "max"),
    "pixel_step_cv": ("smoothness", "pixel_rmse", "cv"),
    "lpips_step_mean": ("smoothness", "lpips", "mean"),
    "lpips_step_cv": ("smoothness", "lpips", "cv"),
    "identity_min": ("identity", "min"),
    "identity_mean": ("identity", "mean"),
    "tl_id": ("identity", "temporal", "tl_id"),
    "tg_id": ("identity", "temporal", "tg_id"),
    "tl_id_relative": ("identity", "temporal", "relative", "tl_id"),
    "tg_id_relative": ("identity", "temporal", "relative", "tg_id"),
    "clip_similarity": ("text_alignment", "mean"),
    "clip_matched": ("text_alignment", "matched"),
    "directional_similarity": ("text_alignment", "directional"),
}
#: Per-frame curves, by the path to them.
_CURVES: dict[str, tuple[str, ...]] = {
    "pixel_step": ("smoothness", "pixel_rmse", "steps"),
    "lpips_step": ("smoothness", "lpips", "steps"),
    "identity_to_first": ("identity", "cosine_to_first"),
    "clip_similarity": ("text_alignment", "clip_similarity"),
}


def _dig(record: Mapping[str, Any], path: Sequence[str]) -> Any:
    value: Any = record
    for key in path:
        if not isinstance(value, Mapping) or value.get(key) is None:
            return None
        value = value[key]
    return value


def _across(values: Sequence[float]) -> dict[str, float | int]:
    """Mean, population std, min and max over faces, and how many faces had the value."""
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return {"mean": mean, "std": std, "min": min(values), "max": max(values), "n": len(values)}


def _section(
    label: str, mm: Micromotion, strength: float, per_start: list[dict[str, Any]], frames: int
) -> dict[str, Any]:
    summary = {}
    for key, path in _SUMMARY.items():
        values = [v for v in (_dig(r, path) for r in per_start) if v is not None]
        if values:
            summary[key] = _across([float(v) for v in values])
    curves = {}
    for key, path in _CURVES.items():
        series = [v for v in (_dig(r, path) for r in per_start) if v is not None]
        if series:
            points = list(zip(*series, strict=True))  # per frame (or step), over faces
            stats = [_across([float(v) for v in p]) for p in points]
            curves[key] = {"mean": [s["mean"] for s in stats], "std": [s["std"] for s in stats]}
    return {
        "label": label,
        "micromotion": mm.name,
        "micromotion_metadata": _meta(mm),
        "strength": strength,
        "frame_strengths": [round(strength * i / (frames - 1), 8) for i in range(frames)],
        "summary": summary,
        "curves": curves,
        "per_start": per_start,
        "subspace": subspace_report(mm),
    }


def _consistency(labels: Sequence[str], mms: Sequence[Micromotion]) -> dict[str, Any]:
    """Cosine of every pair of directions over the layers both move, and as a matrix."""
    n = len(mms)
    matrix: list[list[float | None]] = [[None] * n for _ in range(n)]
    pairs = []
    for i in range(n):
        for j in range(n):
            if j < i:
                matrix[i][j] = matrix[j][i]
                continue
            found = direction_cosine(mms[i], mms[j])
            matrix[i][j] = found["cosine"]
            if j > i:
                pairs.append({"a": labels[i], "b": labels[j], **found})
    return {"labels": list(labels), "matrix": matrix, "pairs": pairs}


__all__ = ["MAX_COMPARED", "Evaluation", "compare", "evaluate"]
