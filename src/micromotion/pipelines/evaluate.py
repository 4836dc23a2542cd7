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

Baselines need no file: among the micromotions, ``sefa``, ``sefa:K``, ``ganspace`` and
``ganspace:K`` (``K`` the component, default 0) are computed from the generator on the fly
(:mod:`micromotion.pipelines.baselines`, the code ``micromotion baseline`` writes files with),
on the layers of the first micromotion that is not a baseline (all layers if there is none).
The rule (:func:`parse_baseline`): only a ``str`` spelt exactly so is a baseline; a path
such as ``./sefa`` or a :class:`~pathlib.Path` is always a file, and a bare ``sefa`` that is
also a file in the working directory is refused as ambiguous.

Faces: seeds, or the rows of a ``.npy`` of W+ codes (``[N, num_ws, w_dim]``, as ``micromotion
generate`` writes ``latents.npy``; ``invert``'s ``[num_ws, w_dim]`` code is one face):
:func:`compare` scores every row, or the ``index``-th.

A null edit (strength 0) scores distance 0, identity 1 and TL-ID = TG-ID = 1 (relative 1).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from micromotion.core.defaults import DEFAULT_DEGREES
from micromotion.core.io import load_float_npy, require_file, sha256_file
from micromotion.core.numbers import check_real
from micromotion.core.outputs import OutputSet, input_files
from micromotion.core.progress import Progress
from micromotion.core.provenance import provenance
from micromotion.core.seeds import MAX_SEED
from micromotion.errors import MicromotionError, ParameterError
from micromotion.faces import check_backend
from micromotion.inversion import InversionConfig
from micromotion.media.images import read_rgb, save_png
from micromotion.networks.clip import ClipModel
from micromotion.networks.irse import IdentityLoss
from micromotion.networks.lpips import perceptual_loss
from micromotion.networks.sampling import sample_ws
from micromotion.networks.stylegan2 import Generator
from micromotion.pipelines._load import GeneratorSpec, cached, open_generator
from micromotion.pipelines.animate import PhotoSettings
from micromotion.pipelines.baselines import (
    ganspace_components,
    ganspace_micromotion,
    sefa_micromotion,
)
from micromotion.pipelines.evaluate_plot import draw_comparison
from micromotion.pipelines.latents import read_code
from micromotion.pipelines.losses import select_loss
from micromotion.pipelines.outputs import save_record
from micromotion.pipelines.photo import (
    PROJECTOR,
    FaceCrop,
    choose_inverter,
    face_crop,
    invert_crops,
    open_inverter,
)
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
from micromotion.subspace.baselines import Components
from micromotion.subspace.layers import layers_text
from micromotion.subspace.metrics import direction_cosine, subspace_report
from micromotion.subspace.micromotion import Micromotion
from micromotion.weights.assets import fetch_all
from micromotion.weights.clip import load_clip
from micromotion.weights.irse import load_irse50
from micromotion.weights.lpips import load_lpips
from micromotion.weights.micromotion import load_micromotion

#: Frames rendered per synthesis pass.
_BATCH = 8
#: Micromotions one comparison may hold (each is rendered on every face).
MAX_COMPARED = 16
#: GANSpace's samples for a ``ganspace:K`` computed on the fly. The file-writing job's
#: default (100 000) is for a direction kept and reused; for a comparison, 20 000 samples
#: estimate the leading components of a 512-wide ``w`` well (their spread is ~1/√n) in a few
#: seconds on a GPU.
EVAL_GANSPACE_SAMPLES = 20_000

MicromotionSpec = str | os.PathLike[str] | Micromotion
#: ``sefa``, ``sefa:K``, ``ganspace``, ``ganspace:K``; anything after the colon is checked.
_BASELINE = re.compile(r"(sefa|ganspace)(?::(.*))?", re.DOTALL)


@dataclass(frozen=True)
class BaselineSpec:
    """A baseline computed on the fly instead of read from a file (``sefa:2``).

    Attributes:
        method: ``"sefa"`` or ``"ganspace"``.
        component: Which direction, 0 = the strongest.
    """

    method: str
    component: int

    @property
    def label(self) -> str:
        """How the comparison names it: ``sefa:0``."""
        return f"{self.method}:{self.component}"


def parse_baseline(spec: object) -> BaselineSpec | None:
    """The baseline a micromotion spec names, or ``None`` for a file, zoo name or object.

    Only a ``str`` spelt ``sefa``, ``sefa:K``, ``ganspace`` or ``ganspace:K`` is a baseline
    (``K`` an integer ≥ 0, default 0); ``./sefa``, ``dir/sefa`` or ``Path("sefa")`` are files.

    Raises:
        MicromotionError: A baseline spelling with a bad component (``sefa:x``, ``sefa:-1``),
            or a bare name that is also a file in the working directory (ambiguous).
    """
    if not isinstance(spec, str):
        return None
    found = _BASELINE.fullmatch(spec)
    if found is None:
        return None
    method, text = found.group(1), found.group(2)
    if text is not None and not (text.isascii() and text.isdigit()):
        raise MicromotionError(
            f"{spec!r}: a baseline's component must be an integer ≥ 0 ({method}:K, e.g. "
            f"{method}:0); for a file of that name write ./{spec}"
        )
    if os.path.lexists(spec):
        raise MicromotionError(
            f"{spec!r} names both a baseline and a file here: write ./{spec} for the file"
        )
    return BaselineSpec(method, int(text) if text is not None else 0)


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` or :func:`compare` wrote.

    Attributes:
        report: The scores (also the JSON file's content).
        files: ``{"report": path}``, and ``"plot"`` when a plot was drawn.
        micromotions: What was scored, in order: the files loaded and the baselines computed
            (``mm.save(...)`` keeps one).
    """

    report: dict[str, Any]
    files: dict[str, Path]
    micromotions: tuple[Micromotion, ...] = ()


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
    image: str | os.PathLike[str] | None = None,
    photo: PhotoSettings | None = None,
    truncation_psi: float = 0.7,
    strength: float = 5.0,
    frames: int = 16,
    id_weights: str | os.PathLike[str] | None = None,
    lpips: bool = False,
    clip: str | ClipModel | None = None,
    template: str | None = None,
    degrees: Sequence[str] | None = None,
    ganspace_samples: int = EVAL_GANSPACE_SAMPLES,
    ganspace_seed: int = 0,
    device: str | torch.device = "auto",
    progress: Progress | None = None,
) -> Evaluation:
    """Render ``frames`` codes ``w + (i/(frames−1))·strength·d`` and score the clip.

    Args:
        micromotion: A micromotion file, zoo name, or loaded micromotion; or a baseline
            computed on the fly, ``sefa[:K]`` or ``ganspace[:K]`` (all layers).
        output: ``NAME.json``.
        generator: A checkpoint file, a zoo name, or a loaded generator.
        seed: The start face's seed (unless ``latent`` or ``image``).
        latent: Start from this W+ code (``.npy``) instead.
        index: Row of ``latent`` when it holds several codes.
        image: Start from this photo instead: aligned and inverted as ``apply --image`` does
            (``photo``), its PSNR recorded with the start.
        photo: How a photo becomes a code (default: as ``apply``'s; ``paste_back`` has no
            meaning here and is refused).
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
        ganspace_samples: ``z`` samples for a ``ganspace`` micromotion's PCA.
        ganspace_seed: Their seed.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        progress: Progress reporting (``render``, per frame; ``sample w`` for GANSpace).

    Returns:
        The report and its file.
    """
    found = _run(
        [micromotion], output=output, generator=generator,
        seeds=[seed] if latent is None and image is None else None, latent=latent,
        index=index, images=None if image is None else [image], photo=photo,
        truncation_psi=truncation_psi, strength=strength, frames=frames,
        id_weights=id_weights, lpips=lpips, clip=clip, template=template, degrees=degrees,
        plot=None, ganspace_samples=ganspace_samples, ganspace_seed=ganspace_seed,
        device=device, progress=progress, single=True,
    )  # fmt: skip
    return found


def compare(
    micromotions: Sequence[MicromotionSpec],
    *,
    output: str | os.PathLike[str],
    generator: GeneratorSpec,
    seeds: Sequence[int] | None = None,
    latent: str | os.PathLike[str] | None = None,
    index: int | None = None,
    images: Sequence[str | os.PathLike[str]] | None = None,
    photo: PhotoSettings | None = None,
    truncation_psi: float = 0.7,
    strength: float | Sequence[float] = 5.0,
    frames: int = 16,
    id_weights: str | os.PathLike[str] | None = None,
    lpips: bool = False,
    clip: str | ClipModel | None = None,
    template: str | None = None,
    degrees: Sequence[str] | None = None,
    plot: str | os.PathLike[str] | None = None,
    ganspace_samples: int = EVAL_GANSPACE_SAMPLES,
    ganspace_seed: int = 0,
    device: str | torch.device = "auto",
    progress: Progress | None = None,
) -> Evaluation:
    """Score several micromotions side by side on the same faces and strengths.

    Each micromotion gets a section: per face, the scores :func:`evaluate` gives; over the
    faces, the mean, standard deviation, minimum and maximum of each summary number and the
    mean ± std curve of each per-frame score. ``transfer_consistency`` holds the cosine of
    every pair of directions over the layers both move (1 for the same direction, −1 for its
    negation; ``null`` when they share no moved layer).

    Baselines (``sefa``, ``sefa:K``, ``ganspace``, ``ganspace:K``) are computed from the
    generator on the layers of the first other micromotion (all layers without one); each
    such section's ``baseline`` records the method, component, layers and eigenvalue or
    variance (and GANSpace's samples and seed), and is labelled ``sefa:K``.

    Args:
        micromotions: One or more micromotion files, zoo names, loaded micromotions or
            baseline specs (the same one twice is allowed: its two sections are then equal).
            See :func:`parse_baseline` for what is a baseline: ``./sefa`` is a file.
        output: ``NAME.json``.
        generator: A checkpoint file, a zoo name, or a loaded generator.
        seeds: The start faces (each micromotion is rendered on every one); default ``[0]``.
            Not with ``latent`` or ``images``.
        latent: The start faces' W+ codes (``.npy``): ``[num_ws, w_dim]`` or ``[w_dim]`` is
            one face (``invert``'s code); ``[N, num_ws, w_dim]`` (``generate``'s
            ``latents.npy``) is ``N`` faces, every row scored unless ``index`` picks one.
        index: The one row of ``latent`` to score.
        images: The start faces as photos: each aligned and inverted as ``apply --image``
            does (``photo``; all in one batch), its PSNR and inverter recorded with the
            start. A photo without a face fails the run before anything is rendered.
        photo: How the photos become codes (default: as ``apply``'s; ``paste_back`` has no
            meaning here and is refused).
        truncation_psi: Truncation of the seeds' faces.
        strength: Strength at the last frame: one for all, or one per micromotion. Their
            units differ: a SeFa direction has unit norm on each layer it moves (SeFa's own
            edits go to about ±3–5), a GANSpace one is one σ of ``w`` along the component
            (±2–3 σ is a clear edit), a decoded one spans the anchors (1 = the whole motion).
        frames: Frames in each clip (≥ 2).
        id_weights: ArcFace IR-SE50 weights (identity metrics skipped without).
        lpips: Also LPIPS-VGG between consecutive frames.
        clip: CLIP as ``MODEL:WEIGHTS`` or a loaded one (text metrics skipped without).
        template: Score every micromotion against this ``{degree}`` template; default: each
            text micromotion against its own, the others not at all.
        degrees: The degree words for ``template`` (default the paper's).
        plot: Also draw the main metrics against frame and strength as this ``.png``.
        ganspace_samples: ``z ~ N(0, I)`` samples for the GANSpace PCA (computed once for
            every ``ganspace:K``).
        ganspace_seed: Their seed (``micromotion baseline ganspace --seed``).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        progress: Progress reporting (``render``, per frame; ``sample w`` for GANSpace).

    Returns:
        The report and its files.
    """
    return _run(
        micromotions, output=output, generator=generator, seeds=seeds, latent=latent,
        index=index, images=images, photo=photo, truncation_psi=truncation_psi,
        strength=strength, frames=frames,
        id_weights=id_weights, lpips=lpips, clip=clip, template=template, degrees=degrees,
        plot=plot, ganspace_samples=ganspace_samples, ganspace_seed=ganspace_seed,
        device=device, progress=progress, single=False,
    )  # fmt: skip


def _run(
    micromotions: Sequence[MicromotionSpec],
    *,
    output: str | os.PathLike[str],
    generator: GeneratorSpec,
    seeds: Sequence[int] | None,
    latent: str | os.PathLike[str] | None,
    index: int | None,
    images: Sequence[str | os.PathLike[str]] | None,
    photo: PhotoSettings | None,
    truncation_psi: float,
    strength: float | Sequence[float],
    frames: int,
    id_weights: str | os.PathLike[str] | None,
    lpips: bool,
    clip: str | ClipModel | None,
    template: str | None,
    degrees: Sequence[str] | None,
    plot: str | os.PathLike[str] | None,
    ganspace_samples: int,
    ganspace_seed: int,
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
    baselines = [parse_baseline(m) for m in micromotions]
    clip_files = clip.split(":", 1) if isinstance(clip, str) else []
    photos = _check_photos(images, photo, seeds=seeds, latent=latent)
    reads = [generator, latent, id_weights, *clip_files, *(photos or [])]
    reads += [
        m
        for m, b in zip(micromotions, baselines, strict=True)
        if b is None and not isinstance(m, Micromotion)
    ]
    outputs = OutputSet(files, reads=input_files(*reads))
    strengths = _strengths(strength, len(micromotions))
    truncation_psi = check_real("truncation_psi", truncation_psi, low=0, high=2)
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 2:
        raise ParameterError("frames", f"{frames!r}: need at least 2 frames")
    if seeds is not None and latent is not None:
        raise ParameterError.worded(
            "{seeds} and {latent} both choose the faces: give one of them", "seeds", "latent"
        )
    seeds = [0] if seeds is None and photos is None else list(seeds or [])
    if not seeds and photos is None:
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
    if any(b is not None and b.method == "ganspace" for b in baselines):
        if (
            isinstance(ganspace_samples, bool)
            or not isinstance(ganspace_samples, int)
            or ganspace_samples < 2
        ):
            raise ParameterError(
                "ganspace_samples", f"{ganspace_samples!r}: must be an integer ≥ 2"
            )
        if (
            isinstance(ganspace_seed, bool)
            or not isinstance(ganspace_seed, int)
            or not 0 <= ganspace_seed <= MAX_SEED
        ):
            raise ParameterError(
                "ganspace_seed", f"{ganspace_seed!r}: must be an integer from 0 to {MAX_SEED}"
            )
    loaded = {
        i: m if isinstance(m, Micromotion) else load_micromotion(m)
        for i, (m, b) in enumerate(zip(micromotions, baselines, strict=True))
        if b is None
    }
    settings = photo or PhotoSettings()
    if photos is not None:
        # Everything to download, at once; each photo read before any network loads.
        inverter = choose_inverter(settings.inverter, generator)
        fetch_all([generator, *([] if inverter == PROJECTOR else [inverter])])
        for path in photos:
            read_rgb(path)
        if settings.align:
            check_backend()
    G, spec = open_generator(generator, device)
    where = G.w_avg.device
    fingerprint = G.fingerprint()
    for mm in loaded.values():
        mm.check_compatible(num_ws=G.num_ws, w_dim=G.w_dim, fingerprint=fingerprint)
    # The photos' faces before anything slow: a photo without one fails the run at once.
    crops = None if photos is None else [_crop(G, p, settings) for p in photos]
    # Baselines move the layers of the first decoded micromotion, so that each pair compared
    # edits the same entries of W+ (and their cosine covers them all).
    follow = loaded[min(loaded)] if loaded else None
    made = _baselines(
        G, spec, baselines, follow, samples=ganspace_samples, seed=ganspace_seed, progress=progress
    )
    mms = [loaded[i] if i in loaded else made[i] for i in range(len(micromotions))]
    scorers = _load_scorers(lpips=lpips, id_weights=id_weights, clip=clip, where=where)
    texts = [_text_of(mm, scorers.clip, template, degrees) for mm in mms]

    # Step 1 — the start faces, and each one's unedited clip (strength 0, the same frames).
    # [(label, w [num_ws, w_dim])]
    if crops is not None:
        assert photos is not None
        starts = _photo_starts(G, spec, fingerprint, photos, crops, settings, progress)
    else:
        starts = _starts(G, seeds, latent, index, truncation_psi, every_row=not single)
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
        "latent_sha256": sha256_file(latent) if latent is not None else None,
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
            baseline=_baseline_record(mm),
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
    return Evaluation(report, files, tuple(mms))


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
    *,
    every_row: bool,
) -> list[tuple[dict[str, Any], torch.Tensor]]:
    """The start faces as ``(label, w [num_ws, w_dim])``: seeds, or a ``.npy``'s rows.

    With ``every_row``, a ``[N, num_ws, w_dim]`` file and no ``index`` gives ``N`` faces;
    otherwise :func:`read_code`'s rule (one code, ``index`` picking a row) holds.
    """
    where = G.w_avg.device
    if latent is None:
        ws = sample_ws(G, list(seeds), truncation_psi=truncation_psi)  # [S, num_ws, w_dim]
        return [({"seed": s, "truncation_psi": truncation_psi}, ws[i]) for i, s in enumerate(seeds)]
    path = Path(latent)
    rows = 1
    if every_row and index is None:
        array = load_float_npy(path, what="codes")
        rows = int(array.shape[0]) if array.ndim == 3 else 1
        del array
    if rows == 1:
        w = read_code(path, index, num_ws=G.num_ws, w_dim=G.w_dim).to(where)
        return [({"latent": str(latent), "index": index}, w)]
    # Each row through the one reader, so that every row gets its shape and finiteness check.
    return [
        (
            {"latent": str(latent), "index": i},
            read_code(path, i, num_ws=G.num_ws, w_dim=G.w_dim).to(where),
        )
        for i in range(rows)
    ]


def _check_photos(
    images: Sequence[str | os.PathLike[str]] | None,
    photo: PhotoSettings | None,
    *,
    seeds: Sequence[int] | None,
    latent: str | os.PathLike[str] | None,
) -> list[Path] | None:
    """The photos as paths, checked: not with other faces, each a file, none twice."""
    if images is None:
        if photo is not None:
            raise ParameterError.worded("{photo} settings go with {images}", "photo", "images")
        return None
    if isinstance(images, str | os.PathLike) or not images:
        raise ParameterError("images", "give a list of one or more photos")
    if seeds is not None or latent is not None:
        raise ParameterError.worded(
            "{images}, {seeds} and {latent} each choose the faces: give one of them",
            "images",
            "seeds",
            "latent",
        )
    if photo is not None and photo.paste_back:
        raise ParameterError("paste_back", "has no meaning for a score; leave it off")
    paths = [Path(p) for p in images]
    for path in paths:
        require_file(path, what="a photo")
    if len({p.resolve() for p in paths}) != len(paths):
        raise ParameterError("images", "a photo is given twice")
    return paths


def _crop(G: Generator, path: Path, settings: PhotoSettings) -> FaceCrop:
    return face_crop(path, resolution=G.img_resolution, align=settings.align, face=settings.face)


def _photo_starts(
    G: Generator,
    spec: str,
    fingerprint: str,
    photos: Sequence[Path],
    crops: Sequence[FaceCrop],
    settings: PhotoSettings,
    progress: Progress | None,
) -> list[tuple[dict[str, Any], torch.Tensor]]:
    """The photos' faces as ``(label, w [num_ws, w_dim])``: inverted as ``apply`` inverts.

    The label records the photo (path and sha256), the face found, the inverter used and the
    reconstruction's PSNR (and LPIPS), so a score can be traced to the code it moved.
    """
    loss_fn, loss_name = select_loss(device=G.w_avg.device, lpips=settings.lpips)
    encoder = open_inverter(settings.inverter_settings, spec, G.w_avg.device)
    result, distances, used = invert_crops(
        G, crops, encoder=encoder, settings=settings.inverter_settings,
        config=InversionConfig(steps=settings.steps), loss_fn=loss_fn, loss_name=loss_name,
        progress=progress,
    )  # fmt: skip
    starts = []
    for i, (path, crop) in enumerate(zip(photos, crops, strict=True)):
        label = {
            "image": str(path),
            "image_sha256": sha256_file(path),
            "face_index": crop.record.get("face_index"),
            "aligned": crop.record["aligned"],
            "inverter": used,
            "loss": loss_name,
            "psnr_db": round(float(result.psnr[i]), 3),
            "lpips": distances[i],
            "generator_fingerprint": fingerprint,
        }
        starts.append((label, result.ws[i].detach().to(G.w_avg.device)))
    return starts


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


#: What a baseline section records of its micromotion's metadata, by method.
_BASELINE_KEYS: dict[str, tuple[str, ...]] = {
    "sefa": ("component", "layers", "eigenvalue", "explained", "normalize", "include_torgb",
             "scale", "affines", "reference"),
    "ganspace": ("component", "layers", "variance", "std", "explained", "samples", "seed",
                 "scale", "reference"),
}  # fmt: skip


def _baseline_record(mm: Micromotion) -> dict[str, Any] | None:
    """A SeFa or GANSpace direction's settings, from a file or computed here, else ``None``.

    The record holds the method, component, layers and eigenvalue (SeFa) or variance and
    sample count (GANSpace).
    """
    method = mm.metadata.get("source")
    if method not in _BASELINE_KEYS:
        return None
    record = {"method": method, **{k: mm.metadata.get(k) for k in _BASELINE_KEYS[method]}}
    # A baseline file keeps what `micromotion baseline` recorded; one computed here says so.
    record["computed"] = mm.metadata.get("computed_by") == "evaluate"
    record["layers_from"] = mm.metadata.get("layers_from")
    return record


def _baselines(
    G: Generator,
    spec: str,
    baselines: Sequence[BaselineSpec | None],
    follow: Micromotion | None,
    *,
    samples: int,
    seed: int,
    progress: Progress | None,
) -> dict[int, Micromotion]:
    """The baselines among the micromotions, by position, on ``follow``'s layers (or all)."""
    layers = layers_text(follow.mask) if follow is not None else None
    made: dict[int, Micromotion] = {}
    comps: Components | None = None  # GANSpace's PCA, shared by every ganspace:K
    for i, b in enumerate(baselines):
        if b is None:
            continue
        if b.component >= G.w_dim:
            raise MicromotionError(
                f"{b.label}: component {b.component} out of range: this generator's w has "
                f"{G.w_dim} components (0-{G.w_dim - 1})"
            )
        if b.method == "sefa":
            try:
                mm, _ = sefa_micromotion(
                    G, component=b.component, layers=layers, name=b.label, generator_spec=spec
                )
            except ParameterError as exc:
                # The layers are not the user's option here but the first micromotion's.
                raise MicromotionError(
                    f"{b.label} on the layers of {follow.name if follow else 'all'} ({layers}): "
                    f"{exc}"
                ) from None
        else:
            if comps is None:
                comps = ganspace_components(G, samples=samples, seed=seed, progress=progress)
            mm = ganspace_micromotion(
                G, comps, component=b.component, layers=layers, samples=samples, seed=seed,
                name=b.label, generator_spec=spec,
            )  # fmt: skip
        mm.metadata.update(
            computed_by="evaluate",
            layers_from=follow.name if follow is not None else None,
        )
        made[i] = mm
    return made


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
        "baseline": _baseline_record(mm),
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


__all__ = [
    "EVAL_GANSPACE_SAMPLES",
    "MAX_COMPARED",
    "BaselineSpec",
    "Evaluation",
    "compare",
    "evaluate",
    "parse_baseline",
]
