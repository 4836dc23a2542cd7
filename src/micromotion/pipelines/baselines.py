"""Baselines under the same API: a SeFa, GANSpace or InterFaceGAN direction as a micromotion file.

Each job reads a generator, computes one direction (:mod:`micromotion.subspace.baselines`),
and writes ``NAME.safetensors``, a :class:`~micromotion.subspace.micromotion.Micromotion` that
``micromotion apply`` takes like any decoded one. Its metadata names the method, the component,
the layers, every setting, the leading eigenvalues and the generator's fingerprint.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from micromotion.core.defaults import DEFAULT_CLIP
from micromotion.core.io import require_file, sha256_file
from micromotion.core.numbers import check_real
from micromotion.core.outputs import OutputSet, input_files
from micromotion.core.progress import Progress
from micromotion.core.provenance import provenance
from micromotion.core.seeds import MAX_SEED
from micromotion.errors import MicromotionError, ParameterError
from micromotion.networks.clip import ClipModel
from micromotion.networks.sampling import mapped_w, sample_ws
from micromotion.networks.stylegan2 import Generator
from micromotion.pipelines._load import GeneratorSpec, cached, open_generator
from micromotion.pipelines.outputs import check_output, save_npy
from micromotion.subspace.baselines import (
    Boundary,
    Components,
    as_micromotion,
    ganspace,
    linear_boundary,
    sefa,
    select_by_score,
)
from micromotion.subspace.layers import layer_mask
from micromotion.subspace.micromotion import Micromotion
from micromotion.weights.clip import load_clip

#: Eigenvalues / variances kept in a file's metadata, leading first.
KEPT_VALUES = 16
#: GANSpace's default sample count: the 512 × 512 covariance of FFHQ's W settles well before
#: this (the GANSpace paper used 10⁶ with incremental PCA; the moments here are exact sums).
GANSPACE_SAMPLES = 100_000
#: Samples mapped per batch.
_BATCH = 4096

Scale = Literal["unit", "std"]
Classifier = Literal["svm", "logistic"]
#: InterFaceGAN's share of scored codes taken from each end (``chosen_num_or_ratio``).
INTERFACEGAN_RATIO = 0.02
#: Faces sampled and scored by CLIP when the data are prompts.
INTERFACEGAN_SAMPLES = 2000
#: Faces rendered and embedded per pass when scoring with CLIP.
_RENDER_BATCH = 8


@dataclass(frozen=True)
class Baseline:
    """What a baseline job wrote.

    Attributes:
        micromotion: The direction as a micromotion.
        files: ``{"micromotion": path}``; for InterFaceGAN from prompts also ``codes`` and
            ``scores``, the faces it scored (see :func:`scored_faces_paths`).
        components: Every direction the method found (``component`` picked one of them);
            ``None`` for InterFaceGAN, which finds one.
        boundary: InterFaceGAN's boundary (its first fitted layer's for W+ codes), else ``None``.
    """

    micromotion: Micromotion
    files: dict[str, Path]
    components: Components | None
    boundary: Boundary | None = None


def sefa_direction(
    generator: GeneratorSpec,
    *,
    output: str | os.PathLike[str],
    component: int = 0,
    layers: str | None = None,
    normalize: bool = True,
    include_torgb: bool = False,
    name: str | None = None,
    device: str | torch.device = "auto",
) -> Baseline:
    """SeFa's ``component``-th direction for ``layers``, written as a micromotion file.

    The style affines that read the chosen W+ entries are stacked into ``A`` and the
    eigenvectors of ``AᵀA`` ranked (:func:`micromotion.subspace.baselines.sefa`). The direction
    has unit norm on each chosen layer, so strength ``s`` moves each of them by ``s``, as SeFa's
    own editing does.

    Args:
        generator: A checkpoint file, a zoo name, or a loaded generator.
        output: ``NAME.safetensors``.
        component: Which eigenvector, 0 = the largest eigenvalue.
        layers: W+ entries whose affines are factorised and which the edit moves, e.g.
            ``"0-7"`` (default: all).
        normalize: Unit-norm style channels before factorising (SeFa's code does).
        include_torgb: Factorise the ToRGB affines as well (SeFa uses the convolutions').
        name: Name to record (default: the output's stem).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

    Returns:
        The micromotion, its file, and every component.
    """
    # Step 0 — check inputs before the generator loads.
    outputs, G, spec = _open_component(output, generator, component, layers, device)
    out = outputs.files["micromotion"]

    # Steps 1 and 2 — the chosen affines' factorisation, and the micromotion.
    mm, comps = sefa_micromotion(
        G,
        component=component,
        layers=layers,
        normalize=normalize,
        include_torgb=include_torgb,
        name=name or out.name.removesuffix(".safetensors"),
        generator_spec=spec,
    )
    return _written(outputs, mm, comps)


def ganspace_direction(
    generator: GeneratorSpec,
    *,
    output: str | os.PathLike[str],
    component: int = 0,
    layers: str | None = None,
    samples: int = GANSPACE_SAMPLES,
    seed: int = 0,
    scale: Scale = "std",
    name: str | None = None,
    device: str | torch.device = "auto",
    progress: Progress | None = None,
) -> Baseline:
    """GANSpace's ``component``-th principal component of ``w``, on ``layers``, as a file.

    Args:
        generator: A checkpoint file, a zoo name, or a loaded generator.
        output: ``NAME.safetensors``.
        component: Which component, 0 = the largest variance.
        layers: W+ entries the edit moves, e.g. ``"0-7"`` (default: all). GANSpace applies a
            component to a range of layers; the component itself is one ``w`` direction.
        samples: ``z ~ N(0, I)`` samples mapped to untruncated ``w``.
        seed: Seed of the samples (drawn on the CPU, the same on every device).
        scale: ``"std"`` (default): the direction is the component times the standard
            deviation of ``w`` along it, so strength 1 is one σ, GANSpace's unit;
            ``"unit"``: unit norm.
        name: Name to record (default: the output's stem).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        progress: Progress reporting (``sample w``, per batch).

    Returns:
        The micromotion, its file, and every component.
    """
    # Step 0 — check inputs before the generator loads.
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:
        raise ParameterError("samples", f"{samples!r}: must be an integer ≥ 2")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ParameterError("seed", f"{seed!r}: must be an integer from 0 to {MAX_SEED}")
    if scale not in ("unit", "std"):
        raise ParameterError("scale", f"{scale!r}: choose unit or std")
    outputs, G, spec = _open_component(output, generator, component, layers, device)
    out = outputs.files["micromotion"]

    # Step 1 — sample w and take its principal components.
    comps = ganspace_components(G, samples=samples, seed=seed, progress=progress)

    # Step 2 — the micromotion and its file.
    mm = ganspace_micromotion(
        G,
        comps,
        component=component,
        layers=layers,
        samples=samples,
        seed=seed,
        scale=scale,
        name=name or out.name.removesuffix(".safetensors"),
        generator_spec=spec,
    )
    return _written(outputs, mm, comps)


def _open_component(
    output: str | os.PathLike[str],
    generator: GeneratorSpec,
    component: int,
    layers: str | None,
    device: str | torch.device,
) -> tuple[OutputSet, Generator, str]:
    """The checks SeFa and GANSpace share, before and after the generator loads."""
    out = check_output(Path(output))
    outputs = OutputSet({"micromotion": out}, reads=[generator])
    _check_component(component)
    G, spec = open_generator(generator, device)
    _mask(layers, G.num_ws)
    _check_component(component, G.w_dim)
    return outputs, G, spec


def _written(outputs: OutputSet, mm: Micromotion, comps: Components) -> Baseline:
    """Write a SeFa or GANSpace micromotion file; what it wrote."""
    with outputs:
        mm.save(outputs.path("micromotion"))
    return Baseline(mm, dict(outputs.files), comps)


def interfacegan_direction(
    generator: GeneratorSpec,
    *,
    output: str | os.PathLike[str],
    codes: str | os.PathLike[str] | None = None,
    labels: str | os.PathLike[str] | None = None,
    column: str | None = None,
    prompts: Sequence[str] | None = None,
    samples: int = INTERFACEGAN_SAMPLES,
    seed: int = 0,
    truncation_psi: float = 0.7,
    clip: str | ClipModel = DEFAULT_CLIP,
    ratio: float | None = None,
    classifier: Classifier = "svm",
    c: float = 1.0,
    layers: str | None = None,
    name: str | None = None,
    device: str | torch.device = "auto",
    progress: Progress | None = None,
) -> Baseline:
    """InterFaceGAN: a linear boundary's unit normal, written as a micromotion file.

    The boundary separates codes with an attribute from codes without it.

    The data are either ``codes`` (``.npy``, ``[N, w_dim]`` W codes or ``[N, num_ws, w_dim]``
    W+ codes) with ``labels`` (a CSV with one row per code: a 0/1 label or a score), or two
    ``prompts`` (``"a smiling face"``, ``"a neutral face"``): ``samples`` faces are drawn
    from seeds ``seed, seed + 1, …`` and each is scored by CLIP as
    ``cos(image, prompt₀) − cos(image, prompt₁)``. Scores (anything but 0/1 labels) keep the
    ``ratio`` highest as positives and the ``ratio`` lowest as negatives, as InterFaceGAN does.
    W codes (and W+ codes whose layers are all equal) get one boundary in ``w``; other W+
    codes get one boundary per layer. The direction has unit norm on each chosen layer and
    points toward the positive class (label 1, a high score, the first prompt).

    Args:
        generator: A checkpoint file, a zoo name, or a loaded generator.
        output: ``NAME.safetensors``.
        codes: The codes, ``.npy``.
        labels: CSV of labels or scores, one row per code (an optional header row; several
            columns need ``column``).
        column: The CSV column to read (a header name).
        prompts: Two prompts, positive first, instead of ``codes`` and ``labels``.
        samples: Faces sampled for ``prompts``.
        seed: First seed of those faces (and of the train/validation split).
        truncation_psi: Truncation of those faces.
        clip: CLIP for ``prompts``, as ``MODEL:WEIGHTS`` or a loaded one.
        ratio: Share taken from each end of the scores (default 0.02, InterFaceGAN's).
        classifier: ``"svm"`` (InterFaceGAN's linear SVM) or ``"logistic"``.
        c: The classifier's data weight against its ``½‖n‖²`` regulariser.
        layers: W+ entries the edit moves, e.g. ``"0-7"`` (default: all).
        name: Name to record (default: the output's stem).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        progress: Progress reporting (``score faces``, per batch).

    Returns:
        The micromotion, its file, and the boundary.
    """
    # Step 0 — check inputs before the generator loads.
    out = check_output(Path(output))
    clip_files = clip.split(":", 1) if isinstance(clip, str) and prompts is not None else []
    files = {"micromotion": out}
    if prompts is not None:  # the scored faces, so another fit needs no CLIP pass
        files |= scored_faces_paths(out)
    outputs = OutputSet(files, reads=input_files(generator, codes, labels, *clip_files))
    if (codes is None) != (labels is None):
        raise ParameterError.worded("{codes} and {labels} go together", "codes", "labels")
    if (codes is None) == (prompts is None):
        raise ParameterError.worded(
            "give either {codes} with {labels}, or {prompts}", "codes", "labels", "prompts"
        )
    if prompts is not None and (isinstance(prompts, str) or len(prompts) != 2):
        raise ParameterError("prompts", "give two prompts: the attribute's, then its opposite's")
    if prompts is not None and any(not str(p).strip() for p in prompts):
        raise ParameterError("prompts", "a prompt is empty")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 4:
        raise ParameterError("samples", f"{samples!r}: must be an integer ≥ 4")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ParameterError("seed", f"{seed!r}: must be an integer from 0 to {MAX_SEED}")
    if prompts is not None and seed + samples - 1 > MAX_SEED:
        raise ParameterError("seed", f"{seed} + {samples} samples: seeds go up to {MAX_SEED}")
    truncation_psi = check_real("truncation_psi", truncation_psi, low=0, high=2)
    if ratio is not None:
        ratio = check_real("ratio", ratio, low=0, high=0.5, low_open=True)
    c = check_real("c", c, low=0, low_open=True)
    if classifier not in ("svm", "logistic"):
        raise ParameterError("classifier", f"{classifier!r}: choose svm or logistic")
    table, table_path = None, Path()
    if codes is not None and labels is not None:
        require_file(codes, what="a .npy of codes")
        table_path = Path(labels)
        table = _read_labels(table_path, column)
    G, spec = open_generator(generator, device)
    mask = _mask(layers, G.num_ws)

    # Step 1 — the data: codes with labels or scores.
    scored: tuple[torch.Tensor, torch.Tensor, int] | None = None  # faces CLIP scored, to save
    if codes is not None and table is not None:
        x = _read_codes(Path(codes), G.num_ws, G.w_dim)  # [N, w_dim] or [N, num_ws, w_dim]
        if len(table) != x.shape[0]:
            raise MicromotionError(
                f"{labels}: {len(table)} rows for {x.shape[0]} codes in {codes}: give one per code"
            )
        y = torch.tensor(table, dtype=torch.float64)  # [N]
        data: dict[str, Any] = {
            "codes": str(codes),
            "codes_sha256": sha256_file(codes),
            "labels": str(labels),
            "labels_sha256": sha256_file(table_path),
            "column": column,
        }
    else:
        assert prompts is not None
        where = G.w_avg.device
        clip_model = (
            clip
            if isinstance(clip, ClipModel)
            else cached("clip", clip, where, lambda: load_clip(str(clip), device=where))
        )
        x, y = _score_faces(G, clip_model, list(prompts), samples, seed, truncation_psi, progress)
        data = {
            "prompts": list(prompts),
            "samples": samples,
            "seeds": f"{seed}-{seed + samples - 1}",
            "truncation_psi": truncation_psi,
            "clip": clip_model.spec,
            "clip_weights_sha256": clip_model.weights_sha256,
            "score": "cos(image, prompts[0]) - cos(image, prompts[1])",
        }
        scored = (x, y, seed)
    binary = bool(((y == 0) | (y == 1)).all())
    if binary and ratio is None:
        chosen, target = torch.arange(len(y)), y
    else:
        used_ratio = INTERFACEGAN_RATIO if ratio is None else ratio
        chosen, target = select_by_score(y, used_ratio)
        data["ratio"] = used_ratio
    data["labels_kind"] = "0/1" if binary else "scores"

    # Step 2 — the boundary (one in w, or one per W+ layer) and its normal.
    per_layer = x.ndim == 3 and not bool((x == x[:, :1]).all())
    accuracy: dict[str, Any]
    if per_layer:
        found = [
            linear_boundary(x[chosen, i], target, method=classifier, c=c, seed=seed)
            if bool(mask[i])
            else None
            for i in range(G.num_ws)
        ]
        fitted = [b for b in found if b is not None]
        vector = torch.stack(
            [b.normal if b is not None else fitted[0].normal for b in found]
        )  # [num_ws, w_dim]; unmoved layers hold a fitted normal so `with_layers` can widen
        boundary = fitted[0]
        accuracy = {
            "train_accuracy": [None if b is None else b.train_accuracy for b in found],
            "val_accuracy": [None if b is None else b.val_accuracy for b in found],
        }
    else:
        flat = x[:, 0] if x.ndim == 3 else x  # [N, w_dim]
        boundary = linear_boundary(flat[chosen], target, method=classifier, c=c, seed=seed)
        vector = boundary.normal
        accuracy = {
            "train_accuracy": boundary.train_accuracy,
            "val_accuracy": boundary.val_accuracy,
        }

    # Step 3 — the micromotion and its file.
    mm = as_micromotion(
        vector,
        num_ws=G.num_ws,
        layers=layers,
        name=name or out.name.removesuffix(".safetensors"),
        source="interfacegan",
        generator_fingerprint=G.fingerprint(),
        metadata={
            "classifier": classifier,
            "c": c,
            "space": "W+ (one boundary per layer)" if per_layer else "W",
            "data": data,
            **accuracy,
            "num_positive": boundary.num_positive,
            "num_negative": boundary.num_negative,
            "num_train": boundary.num_train,
            "train_split": 0.7,
            "scale": "unit",
            "generator": spec,
            "reference": "Shen et al., Interpreting the Latent Space of GANs for Semantic Face "
            "Editing, CVPR 2020",
        },
    )
    with outputs:
        if scored is not None:
            # The scored faces first, so that the micromotion records their sha256.
            fingerprint = mm.metadata.get("generator_fingerprint")
            made = {**data, "generator": spec, "generator_fingerprint": fingerprint}
            saved = _save_scored(outputs, *scored, record=made)
            mm.metadata["data"] = {**mm.metadata["data"], "saved": saved}
        mm.save(outputs.path("micromotion"))
    return Baseline(mm, files, None, boundary)


def scored_faces_paths(output: Path) -> dict[str, Path]:
    """Where InterFaceGAN's CLIP-scored faces go beside ``NAME.safetensors``.

    ``NAME_codes.npy`` (``[N, w_dim]`` float32, the faces' ``w``) and ``NAME_scores.csv``
    (``seed,score``): ``--codes NAME_codes.npy --labels NAME_scores.csv --column score``
    fits the same boundary again without CLIP, or another one (``--ratio``, ``--classifier``).
    """
    stem = output.name.removesuffix(".safetensors")
    return {
        "codes": output.with_name(f"{stem}_codes.npy"),
        "scores": output.with_name(f"{stem}_scores.csv"),
    }


def _save_scored(
    outputs: OutputSet, x: torch.Tensor, y: torch.Tensor, seed: int, *, record: dict[str, Any]
) -> dict[str, dict[str, str]]:
    """Write the scored faces; return each file's name and sha256.

    The codes are float32 (what the generator mapped: their float64 copy is exact) and the
    scores ``repr`` floats (which round-trip a float64), so a refit reads the very numbers
    that were fitted. The CSV's first line is a ``#`` comment with the provenance (the
    labels reader skips such lines); the ``.npy`` has no room for one, and the micromotion
    file records both files' sha256.
    """
    save_npy(outputs.path("codes"), x.to(torch.float32).numpy())
    made = provenance(kind="interfacegan scored faces", **record)
    rows = "".join(f"{seed + i},{float(v)!r}\n" for i, v in enumerate(y.tolist()))
    header = f"# {json.dumps(made, sort_keys=True)}\nseed,score\n"
    outputs.path("scores").write_text(header + rows, encoding="utf-8")
    return {
        role: {"file": outputs.files[role].name, "sha256": sha256_file(outputs.path(role))}
        for role in ("codes", "scores")
    }


def sefa_micromotion(
    G: Generator,
    *,
    component: int = 0,
    layers: str | None = None,
    normalize: bool = True,
    include_torgb: bool = False,
    name: str,
    generator_spec: str,
) -> tuple[Micromotion, Components]:
    """SeFa's ``component``-th direction of a loaded generator, as a micromotion (no file).

    :func:`sefa_direction` writes what this returns; ``micromotion evaluate --compare sefa:K``
    scores it without a file. Arguments as :func:`sefa_direction`'s.

    Args:
        G: The generator.
        component: Which eigenvector, 0 = the largest eigenvalue.
        layers: W+ entries whose affines are factorised and which the edit moves.
        normalize: Unit-norm style channels before factorising.
        include_torgb: Factorise the ToRGB affines as well.
        name: Name to record.
        generator_spec: How the generator was named (recorded).

    Returns:
        The micromotion and every component.
    """
    mask = _mask(layers, G.num_ws)
    _check_component(component, G.w_dim)
    affines = [
        (entry, label, module)
        for entry, label, module in G.synthesis.style_affines()
        if bool(mask[entry]) and (include_torgb or not label.endswith("torgb"))
    ]
    if not affines:
        raise ParameterError.worded(
            "{layers} {spec}: these entries feed no convolution (only a ToRGB); choose other "
            "layers or add {include_torgb}",
            "layers",
            "include_torgb",
            spec=layers,
        )
    comps = sefa(
        [module.weight * module.weight_gain for _, _, module in affines], normalize=normalize
    )
    mm = as_micromotion(
        comps.directions[component],
        num_ws=G.num_ws,
        layers=layers,
        name=name,
        source="sefa",
        generator_fingerprint=G.fingerprint(),
        metadata={
            "component": component,
            "eigenvalue": float(comps.values[component]),
            "explained": float(comps.explained[component]),
            "eigenvalues": _kept(comps.values),
            "affines": [label for _, label, _ in affines],
            "normalize": normalize,
            "include_torgb": include_torgb,
            "scale": "unit",
            "generator": generator_spec,
            "reference": "Shen & Zhou, Closed-Form Factorization of Latent Semantics in GANs, "
            "CVPR 2021",
        },
    )
    return mm, comps


def ganspace_components(
    G: Generator,
    *,
    samples: int = GANSPACE_SAMPLES,
    seed: int = 0,
    progress: Progress | None = None,
) -> Components:
    """GANSpace's principal components of ``w = mapping(z)``, ``samples`` draws from ``seed``.

    Computed once, they serve every component (:func:`ganspace_micromotion`).

    Args:
        G: The generator.
        samples: ``z ~ N(0, I)`` samples mapped to untruncated ``w``.
        seed: Seed of the samples (drawn on the CPU, the same on every device).
        progress: Progress reporting (``sample w``, per batch).

    Returns:
        Every component with the variance of ``w`` along it, and the mean.
    """
    total = -(-samples // _BATCH)

    def batches() -> Iterator[torch.Tensor]:
        for i, w in enumerate(mapped_w(G, samples, seed=seed, batch=_BATCH)):  # [B, w_dim]
            yield w
            if progress is not None:
                progress("sample w", i + 1, total, "")

    return ganspace(batches())


def ganspace_micromotion(
    G: Generator,
    comps: Components,
    *,
    component: int = 0,
    layers: str | None = None,
    samples: int,
    seed: int,
    scale: Scale = "std",
    name: str,
    generator_spec: str,
) -> Micromotion:
    """GANSpace's ``component``-th direction from :func:`ganspace_components`, no file.

    :func:`ganspace_direction` writes what this returns; ``micromotion evaluate --compare
    ganspace:K`` scores it without a file.

    Args:
        G: The generator the components came from.
        comps: Its components.
        component: Which component, 0 = the largest variance.
        layers: W+ entries the edit moves (default: all).
        samples: The sample count the components came from (recorded).
        seed: Their seed (recorded).
        scale: ``"std"``: strength 1 is one σ of ``w`` along it; ``"unit"``: unit norm.
        name: Name to record.
        generator_spec: How the generator was named (recorded).

    Returns:
        The micromotion.
    """
    _mask(layers, G.num_ws)
    _check_component(component, G.w_dim)
    std = float(comps.values[component].clamp_min(0).sqrt())
    vector = comps.directions[component] * (std if scale == "std" else 1.0)  # [w_dim]
    if not bool(vector.abs().max() > 0):
        raise MicromotionError(f"component {component} has zero variance: w does not move along it")
    assert comps.mean is not None
    return as_micromotion(
        vector,
        num_ws=G.num_ws,
        layers=layers,
        name=name,
        source="ganspace",
        generator_fingerprint=G.fingerprint(),
        metadata={
            "component": component,
            "variance": float(comps.values[component]),
            "std": std,
            "explained": float(comps.explained[component]),
            "variances": _kept(comps.values),
            "samples": samples,
            "seed": seed,
            "scale": scale,
            "generator": generator_spec,
            "reference": "Härkönen et al., GANSpace: Discovering Interpretable GAN Controls, "
            "NeurIPS 2020",
        },
    )


def _read_codes(path: Path, num_ws: int, w_dim: int) -> torch.Tensor:
    """``[N, w_dim]`` or ``[N, num_ws, w_dim]`` float64 codes from a ``.npy`` (no pickles)."""
    import numpy as np

    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise MicromotionError(f"{path}: not a .npy array of codes ({exc})") from None
    if array.dtype.kind not in "fiu":
        raise MicromotionError(f"{path}: codes must be numbers, got dtype {array.dtype}")
    shape = tuple(array.shape)
    if not (
        (len(shape) == 2 and shape[1] == w_dim)
        or (len(shape) == 3 and shape[1] in (1, num_ws) and shape[2] == w_dim)
    ):
        raise MicromotionError(
            f"{path}: codes of shape {list(shape)}; this generator needs [N, {w_dim}] or "
            f"[N, {num_ws}, {w_dim}]"
        )
    x = torch.from_numpy(array.astype(np.float64))
    if not torch.isfinite(x).all():
        raise MicromotionError(f"{path}: the codes contain NaN or inf")
    return x[:, 0] if x.ndim == 3 and x.shape[1] == 1 else x


def _read_labels(path: Path, column: str | None) -> list[float]:
    """One number per data row of a CSV (an optional header row names the columns)."""
    import csv

    require_file(path, what="a CSV of labels or scores")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [
                row
                for row in csv.reader(line for line in fh if not line.lstrip().startswith("#"))
                if any(cell.strip() for cell in row)
            ]  # "#" lines are comments (the scored faces' CSV starts with its provenance)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MicromotionError(f"{path}: not a readable CSV ({exc})") from None
    if not rows:
        raise MicromotionError(f"{path}: no rows")
    header = None
    try:
        [float(cell) for cell in rows[0]]
    except ValueError:
        header, rows = [cell.strip() for cell in rows[0]], rows[1:]
    width = len(header) if header is not None else len(rows[0]) if rows else 1
    if column is not None:
        if header is None or column not in header:
            raise ParameterError("column", f"{column!r}: not a column of {path} ({header})")
        pick = header.index(column)
    elif width == 1:
        pick = 0
    else:
        raise ParameterError(
            "column", f"{path} has {width} columns: pick one ({', '.join(header or [])})"
        )
    values = []
    for n, row in enumerate(rows, start=2 if header else 1):
        try:
            value = float(row[pick])
        except (ValueError, IndexError):
            raise MicromotionError(f"{path}: line {n}: not a number in the column") from None
        if not math.isfinite(value):
            raise MicromotionError(f"{path}: line {n}: {row[pick]!r} is not a finite number")
        values.append(value)
    if not values:
        raise MicromotionError(f"{path}: no data rows")
    return values


def _score_faces(
    G: Any,
    clip: ClipModel,
    prompts: list[str],
    samples: int,
    seed: int,
    truncation_psi: float,
    progress: Progress | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Faces of seeds ``seed…`` and their CLIP scores: ``(w [N, w_dim], scores [N])``."""
    text = torch.nn.functional.normalize(clip.text_embeds(prompts).double().cpu(), dim=1)
    codes, scores = [], []
    seeds = list(range(seed, seed + samples))
    total = -(-samples // _RENDER_BATCH)
    for b, start in enumerate(range(0, samples, _RENDER_BATCH)):
        ws = sample_ws(G, seeds[start : start + _RENDER_BATCH], truncation_psi=truncation_psi)
        with torch.inference_mode():
            images = G.synthesis(ws, noise_mode="const").clamp(-1, 1).float()  # [B, 3, R, R]
            emb = clip.image_embeds(images).double().cpu()  # [B, D]
        sims = torch.nn.functional.normalize(emb, dim=1) @ text.T  # [B, 2]
        codes.append(ws[:, 0].double().cpu())
        scores.append(sims[:, 0] - sims[:, 1])
        if progress is not None:
            progress("score faces", b + 1, total, "")
    y = torch.cat(scores)
    if not torch.isfinite(y).all():
        raise MicromotionError("a CLIP score is NaN or inf")
    return torch.cat(codes), y


def _check_component(component: int, w_dim: int | None = None) -> None:
    if isinstance(component, bool) or not isinstance(component, int) or component < 0:
        raise ParameterError("component", f"{component!r}: must be an integer ≥ 0")
    if w_dim is not None and component >= w_dim:
        raise ParameterError(
            "component", f"{component}: this network's w has {w_dim} dimensions (0-{w_dim - 1})"
        )


def _mask(layers: str | None, num_ws: int) -> torch.Tensor:
    """The layer mask, with a bad selection reported as the ``layers`` parameter's."""
    if layers is None:
        return torch.ones(num_ws, dtype=torch.bool)
    try:
        return layer_mask(layers, num_ws)
    except MicromotionError as exc:
        raise ParameterError("layers", str(exc).removeprefix("layers ")) from None


def _kept(values: torch.Tensor) -> list[float]:
    return [round(float(v), 8) for v in values[:KEPT_VALUES]]


__all__ = [
    "GANSPACE_SAMPLES",
    "INTERFACEGAN_RATIO",
    "INTERFACEGAN_SAMPLES",
    "Baseline",
    "ganspace_components",
    "ganspace_direction",
    "ganspace_micromotion",
    "interfacegan_direction",
    "sefa_direction",
    "sefa_micromotion",
]
