"""Baselines under the same API: a SeFa or GANSpace direction as a micromotion file.

Each job reads a generator, computes one direction (:mod:`micromotion.subspace.baselines`),
and writes ``NAME.safetensors``, a :class:`~micromotion.subspace.micromotion.Micromotion` that
``micromotion apply`` takes like any decoded one. Its metadata names the method, the component,
the layers, every setting, the leading eigenvalues and the generator's fingerprint.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from micromotion.core.outputs import OutputSet
from micromotion.core.progress import Progress
from micromotion.core.seeds import MAX_SEED
from micromotion.errors import MicromotionError, ParameterError
from micromotion.networks.sampling import mapped_w
from micromotion.pipelines._load import GeneratorSpec, open_generator
from micromotion.pipelines.outputs import check_output
from micromotion.subspace.baselines import Components, as_micromotion, ganspace, sefa
from micromotion.subspace.layers import layer_mask
from micromotion.subspace.micromotion import Micromotion

#: Eigenvalues / variances kept in a file's metadata, leading first.
KEPT_VALUES = 16
#: GANSpace's default sample count: the 512 × 512 covariance of FFHQ's W settles well before
#: this (the GANSpace paper used 10⁶ with incremental PCA; the moments here are exact sums).
GANSPACE_SAMPLES = 100_000
#: Samples mapped per batch.
_BATCH = 4096

Scale = Literal["unit", "std"]


@dataclass(frozen=True)
class Baseline:
    """What a baseline job wrote.

    Attributes:
        micromotion: The direction as a micromotion.
        files: ``{"micromotion": path}``.
        components: Every direction the method found (``component`` picked one of them).
    """

    micromotion: Micromotion
    files: dict[str, Path]
    components: Components


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
    out = check_output(Path(output))
    outputs = OutputSet({"micromotion": out}, reads=[generator])
    _check_component(component)
    G, spec = open_generator(generator, device)
    mask = _mask(layers, G.num_ws)
    _check_component(component, G.w_dim)

    # Step 1 — the affines reading the chosen entries, and their factorisation.
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

    # Step 2 — the micromotion and its file.
    mm = as_micromotion(
        comps.directions[component],
        num_ws=G.num_ws,
        layers=layers,
        name=name or out.name.removesuffix(".safetensors"),
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
            "generator": spec,
            "reference": "Shen & Zhou, Closed-Form Factorization of Latent Semantics in GANs, "
            "CVPR 2021",
        },
    )
    with outputs:
        mm.save(outputs.path("micromotion"))
    return Baseline(mm, {"micromotion": out}, comps)


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
    out = check_output(Path(output))
    outputs = OutputSet({"micromotion": out}, reads=[generator])
    _check_component(component)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:
        raise ParameterError("samples", f"{samples!r}: must be an integer ≥ 2")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ParameterError("seed", f"{seed!r}: must be an integer from 0 to {MAX_SEED}")
    if scale not in ("unit", "std"):
        raise ParameterError("scale", f"{scale!r}: choose unit or std")
    G, spec = open_generator(generator, device)
    _mask(layers, G.num_ws)
    _check_component(component, G.w_dim)

    # Step 1 — sample w and take its principal components.
    total = -(-samples // _BATCH)

    def batches() -> Iterator[torch.Tensor]:
        for i, w in enumerate(mapped_w(G, samples, seed=seed, batch=_BATCH)):  # [B, w_dim]
            yield w
            if progress is not None:
                progress("sample w", i + 1, total, "")

    comps = ganspace(batches())
    std = float(comps.values[component].clamp_min(0).sqrt())
    vector = comps.directions[component] * (std if scale == "std" else 1.0)  # [w_dim]
    if not bool(vector.abs().max() > 0):
        raise MicromotionError(f"component {component} has zero variance: w does not move along it")

    # Step 2 — the micromotion and its file.
    assert comps.mean is not None
    mm = as_micromotion(
        vector,
        num_ws=G.num_ws,
        layers=layers,
        name=name or out.name.removesuffix(".safetensors"),
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
            "generator": spec,
            "reference": "Härkönen et al., GANSpace: Discovering Interpretable GAN Controls, "
            "NeurIPS 2020",
        },
    )
    with outputs:
        mm.save(outputs.path("micromotion"))
    return Baseline(mm, {"micromotion": out}, comps)


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


__all__ = ["GANSPACE_SAMPLES", "Baseline", "ganspace_direction", "sefa_direction"]
