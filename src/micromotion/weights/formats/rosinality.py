"""rosinality/stylegan2-pytorch generators (``g_ema``; training snapshots; pSp/e4e ``decoder.*``).

Read with ``torch.load(weights_only=True)`` (:func:`micromotion.weights.state.load_torch_file`;
``argparse.Namespace``, plain data, is the one extra class allowed: rosinality's training
checkpoints store their ``args`` in one). The table :func:`key_map` turns their names and
shapes into ours and back.
"""

from __future__ import annotations

import argparse
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from micromotion.core.io import atomic_path
from micromotion.errors import CheckpointError
from micromotion.networks.stylegan2 import Generator, GeneratorConfig, _fir_kernel
from micromotion.weights.formats._build import build, check_fir, set_or_estimate_w_avg
from micromotion.weights.state import check_keys, load_torch_file

_MAX_LISTED = 6


def read_rosinality(path: Path) -> Generator:
    """Read a rosinality-layout torch file as a generator."""
    obj = load_torch_file(path, what="a generator checkpoint", safe_globals=[argparse.Namespace])
    return from_rosinality(obj, path)


def _find_rosinality_state(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], Any]:
    """Return ``(g_ema state dict without prefix, latent_avg or None)`` from a loaded file."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{path}: expected a dict (rosinality checkpoint), got {type(obj).__name__}"
        )
    latent_avg = obj.get("latent_avg")
    candidates: list[tuple[str, Any]] = []
    for key in ("g_ema", "state_dict", "g"):
        if isinstance(obj.get(key), Mapping):
            candidates.append((key, obj[key]))
    candidates.append(("", obj))
    for _, sd in candidates:
        for k in sd:
            if isinstance(k, str) and k.endswith("style.1.weight"):
                prefix = k[: -len("style.1.weight")]
                if f"{prefix}input.input" in sd:
                    state = {
                        name[len(prefix) :]: t
                        for name, t in sd.items()
                        if isinstance(name, str)
                        and name.startswith(prefix)
                        and isinstance(t, torch.Tensor)
                    }
                    return state, latent_avg
    keys = ", ".join(sorted(str(k) for k in list(obj)[:_MAX_LISTED]))
    raise CheckpointError(
        f"{path}: not a StyleGAN2 generator checkpoint (no g_ema with style.*/input.input; "
        f"top-level keys: {keys})"
    )


def _rosinality_config(sd: dict[str, torch.Tensor], path: Path) -> GeneratorConfig:
    try:
        n_mlp = 0
        while f"style.{n_mlp + 1}.weight" in sd:
            n_mlp += 1
        style_dim = sd["style.1.weight"].shape[1]
        w_dim = sd[f"style.{n_mlp}.weight"].shape[0]
        mapping_features = sd["style.1.weight"].shape[0]
        c4 = sd["input.input"].shape[1]
        num_convs = 0
        while f"convs.{num_convs}.conv.weight" in sd:
            num_convs += 1
        resolution = 4 * 2 ** (num_convs // 2)
        channels = [c4] + [sd[f"convs.{2 * j}.conv.weight"].shape[1] for j in range(num_convs // 2)]
        img_channels = sd["to_rgb1.conv.weight"].shape[1]
    except (KeyError, IndexError) as exc:
        raise CheckpointError(f"{path}: incomplete rosinality generator (missing {exc})") from exc
    if num_convs % 2:
        raise CheckpointError(f"{path}: odd number of rosinality convs ({num_convs})")
    try:
        return GeneratorConfig(
            img_resolution=resolution,
            channels=tuple(int(c) for c in channels),
            z_dim=int(style_dim),
            w_dim=int(w_dim),
            img_channels=int(img_channels),
            mapping_layers=n_mlp,
            mapping_features=None if mapping_features == w_dim else int(mapping_features),
            use_noise="conv1.noise.weight" in sd,
        )
    except ValueError as exc:
        raise CheckpointError(f"{path}: unsupported rosinality architecture ({exc})") from exc


def key_map(config: GeneratorConfig) -> list[tuple[str, str, str]]:
    """Return ``(ours, theirs, how)`` triples; ``how`` says how to reshape theirs to ours."""
    triples = [
        (f"mapping.fc{i}.{p}", f"style.{i + 1}.{p}", "same")
        for i in range(config.mapping_layers)
        for p in ("weight", "bias")
    ]
    triples.append(("synthesis.b4.const", "input.input", "drop0"))

    def layer(ours: str, theirs: str, noise_idx: int) -> None:
        triples.extend(
            [
                (f"{ours}.weight", f"{theirs}.conv.weight", "drop0"),
                (f"{ours}.affine.weight", f"{theirs}.conv.modulation.weight", "same"),
                (f"{ours}.affine.bias", f"{theirs}.conv.modulation.bias", "same"),
                (f"{ours}.bias", f"{theirs}.activate.bias", "same"),
            ]
        )
        if config.use_noise:
            triples.append((f"{ours}.noise_strength", f"{theirs}.noise.weight", "scalar"))
            triples.append((f"{ours}.noise_const", f"noises.noise_{noise_idx}", "drop01"))

    def torgb(ours: str, theirs: str) -> None:
        triples.extend(
            [
                (f"{ours}.weight", f"{theirs}.conv.weight", "drop0"),
                (f"{ours}.affine.weight", f"{theirs}.conv.modulation.weight", "same"),
                (f"{ours}.affine.bias", f"{theirs}.conv.modulation.bias", "same"),
                (f"{ours}.bias", f"{theirs}.bias", "flat"),
            ]
        )

    layer("synthesis.b4.conv1", "conv1", 0)
    torgb("synthesis.b4.torgb", "to_rgb1")
    for j, res in enumerate(config.resolutions[1:]):
        layer(f"synthesis.b{res}.conv0", f"convs.{2 * j}", 2 * j + 1)
        layer(f"synthesis.b{res}.conv1", f"convs.{2 * j + 1}", 2 * j + 2)
        torgb(f"synthesis.b{res}.torgb", f"to_rgbs.{j}")
    return triples


def _rosinality_fixed_buffers(config: GeneratorConfig) -> list[str]:
    """Names of rosinality's constant FIR buffers (4×-gain upsampling kernels)."""
    names = []
    for j in range(len(config.resolutions) - 1):
        names.append(f"convs.{2 * j}.conv.blur.kernel")
        names.append(f"to_rgbs.{j}.upsample.kernel")
    return names


_RESHAPE = {
    "same": lambda t: t,
    "drop0": lambda t: t[0],
    "drop01": lambda t: t[0, 0],
    "scalar": lambda t: t.reshape([]),
    "flat": lambda t: t.reshape(-1),
}
_UNRESHAPE = {
    "same": lambda t: t,
    "drop0": lambda t: t[None],
    "drop01": lambda t: t[None, None],
    "scalar": lambda t: t.reshape(1),
    "flat": lambda t: t.reshape(1, -1, 1, 1),
}


def from_rosinality(obj: Any, path: Path, *, w_avg: bool = True) -> Generator:
    """Build a generator from a loaded rosinality-layout checkpoint.

    Args:
        obj: What ``torch.load`` returned for the file.
        path: The file it came from, for error messages.
        w_avg: Set ``w_avg`` from the file, or estimate it (with a warning) when it has none.
            ``False`` leaves it zero: for a caller that needs only the network's
            :meth:`~micromotion.networks.stylegan2.Generator.fingerprint`, which ignores it.

    Raises:
        CheckpointError: If ``obj`` holds no rosinality StyleGAN2 generator.
    """
    sd, latent_avg = _find_rosinality_state(obj, path)
    config = _rosinality_config(sd, path)
    triples = key_map(config)
    fixed = _rosinality_fixed_buffers(config)
    theirs_expected = {t for _, t, _ in triples} | set(fixed)
    check_keys(theirs_expected, set(sd), path, "not a rosinality StyleGAN2 generator")
    for name in fixed:
        check_fir(name, sd[name], 4.0, path)
    state: dict[str, torch.Tensor] = {}
    for ours, theirs, how in triples:
        try:
            state[ours] = _RESHAPE[how](sd[theirs])
        except (IndexError, RuntimeError) as exc:
            raise CheckpointError(
                f"{path}: tensor {theirs} has unexpected shape {list(sd[theirs].shape)}"
            ) from exc
    state["mapping.w_avg"] = torch.zeros(config.w_dim)
    G = build(config, state, path)
    G.source = {"format": "rosinality"}
    if w_avg:
        set_or_estimate_w_avg(G, _normalise_latent_avg(latent_avg, config, path), path)
    else:
        G.source["w_avg"] = "not set (the network's identity only)"
    return G


def _normalise_latent_avg(
    latent_avg: Any, config: GeneratorConfig, path: Path
) -> torch.Tensor | None:
    """Accept ``[w_dim]``, ``[1, w_dim]`` or a per-layer ``[num_ws, w_dim]`` with equal rows."""
    if latent_avg is None:
        return None
    if not isinstance(latent_avg, torch.Tensor):
        raise CheckpointError(f"{path}: latent_avg is a {type(latent_avg).__name__}, not a tensor")
    if latent_avg.ndim == 0 or latent_avg.numel() == 0 or not latent_avg.is_floating_point():
        raise CheckpointError(
            f"{path}: latent_avg has shape {list(latent_avg.shape)}, expected [{config.w_dim}]"
        )
    if not torch.isfinite(latent_avg).all():
        raise CheckpointError(f"{path}: latent_avg contains NaN or inf")
    t = latent_avg.detach().float().reshape(-1, latent_avg.shape[-1])
    if t.shape[-1] != config.w_dim:
        raise CheckpointError(
            f"{path}: latent_avg has shape {list(latent_avg.shape)}, expected [{config.w_dim}]"
        )
    if not torch.allclose(t, t[:1].expand_as(t)):
        # An encoder checkpoint may carry its own per-entry mean code (ReStyle/e4e/pSp add the
        # encoder's output to it); the generator's w_avg, used for truncation, is one vector.
        warnings.warn(
            f"{path}: latent_avg differs across W+ entries; w_avg is taken as their mean",
            stacklevel=4,
        )
        return t.mean(dim=0)
    return t[0]


def rosinality_state_dict(G: Generator) -> dict[str, torch.Tensor]:
    """Return ``G``'s weights as a rosinality ``g_ema`` state dict (for export and tests)."""
    ours = G.state_dict()
    sd = {theirs: _UNRESHAPE[how](ours[o]).clone() for o, theirs, how in key_map(G.config)}
    for name in _rosinality_fixed_buffers(G.config):
        sd[name] = _fir_kernel() * 4.0
    return sd


def save_rosinality(G: Generator, path: str | os.PathLike[str]) -> Path:
    """Write ``G`` as a rosinality-style ``{"g_ema": ..., "latent_avg": ...}`` torch file."""
    path = Path(path)
    payload = {"g_ema": rosinality_state_dict(G), "latent_avg": G.w_avg.detach().cpu().clone()}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path
