"""Generator checkpoints: read rosinality ``.pt``, NVIDIA ``.pkl`` and our ``.safetensors``.

The architecture is always read from the file, never asked of the user. Nothing in a
checkpoint is executed: rosinality files go through ``torch.load(weights_only=True)`` and
NVIDIA pickles through a restricted unpickler that rebuilds data only
(:mod:`micromotion._nvidia_pickle`).

micromotion's own format is a ``.safetensors`` file whose metadata holds the
:class:`~micromotion.networks.stylegan2.GeneratorConfig` as JSON; its tensor names are our
module's state-dict keys (NVIDIA's vocabulary).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import pickle
import re
import struct
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from micromotion._io import atomic_path, provenance, require_file
from micromotion.errors import CheckpointError, MicromotionError
from micromotion.networks.stylegan2 import Generator, GeneratorConfig, _fir_kernel

#: Format tag stored in our safetensors metadata.
GENERATOR_FORMAT = "micromotion-generator"
GENERATOR_FORMAT_VERSION = "1"

#: How many mapped samples estimate ``w_avg`` when a checkpoint stores none.
W_AVG_SAMPLES = 10_000
W_AVG_SEED = 0

_MAX_LISTED = 6


# ---------------------------------------------------------------------------------------------
# Public entry points.


def load_generator(
    spec: str | os.PathLike[str], *, device: str | torch.device = "cpu", progress: bool = True
) -> Generator:
    """Load a StyleGAN2 generator from a file or a zoo name, in eval mode, frozen.

    Args:
        spec: A checkpoint path (rosinality ``.pt``, NVIDIA ``.pkl`` or micromotion
            ``.safetensors``) or the name of a zoo entry (downloaded and verified on first use).
        device: Where to put the network.
        progress: Show a progress bar if a zoo download is needed.

    Returns:
        The generator, with ``requires_grad`` off for all its parameters and ``G.source``
        describing where the weights came from.

    Raises:
        CheckpointError: If the file is missing, not a checkpoint, corrupt or unsupported.
    """
    path = _resolve_spec(spec, progress=progress)
    G = read_generator_file(path)
    G.eval().requires_grad_(False)
    return G.to(device)


def read_generator_file(path: str | os.PathLike[str]) -> Generator:
    """Read a generator checkpoint of any supported format (see :func:`load_generator`)."""
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "safetensors":
        G = _read_safetensors(path)
    elif fmt == "torch":
        G = _from_rosinality(_torch_load(path), path)
    else:
        from micromotion._nvidia_pickle import load_nvidia_generator_record

        G = _from_nvidia(load_nvidia_generator_record(path), path)
    G.source.setdefault("file", str(path))
    return G


def save_generator(
    G: Generator, path: str | os.PathLike[str], *, extra: Mapping[str, Any] | None = None
) -> Path:
    """Write ``G`` as micromotion ``.safetensors`` (config and provenance in the metadata).

    The file is written to a temporary name and renamed into place, so a failed write leaves
    no partial file.

    Args:
        G: The generator.
        path: Destination path (``.safetensors``).
        extra: More JSON-serialisable provenance to record.

    Returns:
        The path written.
    """
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in G.state_dict().items()}
    meta = {
        "format": GENERATOR_FORMAT,
        "format_version": GENERATOR_FORMAT_VERSION,
        "config": json.dumps(G.config.to_dict()),
        "provenance": json.dumps(
            provenance(fingerprint=G.fingerprint(), source=G.source, **dict(extra or {}))
        ),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def state_dict_fingerprint(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Return the sha256 over sorted names, dtypes, shapes and little-endian bytes."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{list(t.shape)}\n".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def detect_format(path: str | os.PathLike[str]) -> str:
    """Tell a checkpoint's format from its bytes: ``safetensors``, ``torch`` or ``pickle``.

    Raises:
        CheckpointError: If the file is missing, empty, or none of those.
    """
    path = require_file(path, what="a checkpoint file", error=CheckpointError)
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not head:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    if len(head) >= 9:
        (header_len,) = struct.unpack("<Q", head[:8])
        if head[8:9] == b"{" and 0 < header_len < 100_000_000:
            return "safetensors"
    if head.startswith(b"PK\x03\x04"):
        return "torch"
    if head[:1] == b"\x80":
        # Legacy (pre-1.6) torch.save files start with a pickled magic number; plain
        # pickles (NVIDIA) start with a dict.
        if b"\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19" in head:
            return "torch"
        return "pickle"
    raise CheckpointError(
        f"{path}: not a checkpoint (expected a .safetensors, torch .pt or NVIDIA .pkl file)"
    )


# ---------------------------------------------------------------------------------------------
# Helpers shared by the readers.


def _resolve_spec(spec: str | os.PathLike[str], *, progress: bool) -> Path:
    text = str(spec)
    if os.sep in text or text.endswith((".pt", ".pth", ".pkl", ".safetensors")):
        # Clearly meant as a file: never look it up in the zoo.
        return require_file(text, what="a checkpoint file", error=CheckpointError)
    from micromotion import zoo

    return zoo.resolve(text, kind="generator", progress=progress)


def _torch_load(path: Path) -> Any:
    """``torch.load`` with ``weights_only=True``; argparse.Namespace is the one extra allowed.

    rosinality's training checkpoints store their ``args`` as an ``argparse.Namespace``:
    plain data, safe to rebuild.
    """
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # Name the offending global, but never relay torch's advice to load unsafely.
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(
            f"{path}: refused to load objects that are not plain data{what}"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: corrupt or truncated torch file ({first})") from exc


def _fmt_keys(keys: set[str] | list[str]) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:_MAX_LISTED])
    return shown + (f", … ({len(keys)} in all)" if len(keys) > _MAX_LISTED else "")


def _check_keys(expected: set[str], got: set[str], path: Path, problem: str) -> None:
    """Strict key matching, with the differences listed in the one-line error."""
    missing, unexpected = expected - got, got - expected
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {_fmt_keys(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_fmt_keys(unexpected)}")
        raise CheckpointError(f"{path}: {problem} ({'; '.join(parts)})")


def _build(config: GeneratorConfig, state: dict[str, torch.Tensor], path: Path) -> Generator:
    """Instantiate ``config`` and load ``state`` strictly, with a readable error."""
    G = Generator(config)
    expected = G.state_dict()
    _check_keys(set(expected), set(state), path, "does not match the inferred architecture")
    for name, ref in expected.items():
        if tuple(state[name].shape) != tuple(ref.shape):
            raise CheckpointError(
                f"{path}: tensor {name} has shape {list(state[name].shape)}, "
                f"expected {list(ref.shape)}"
            )
        if not torch.is_floating_point(state[name]):
            raise CheckpointError(f"{path}: tensor {name} is not floating point")
        if not torch.isfinite(state[name]).all():
            raise CheckpointError(f"{path}: tensor {name} contains NaN or inf")
    G.load_state_dict({k: v.float() for k, v in state.items()})
    return G


def estimate_w_avg(
    G: Generator, *, num_samples: int = W_AVG_SAMPLES, seed: int = W_AVG_SEED, batch: int = 1000
) -> torch.Tensor:
    """Estimate the average ``w`` from ``num_samples`` mapped ``z ~ N(0, I)`` (fixed seed).

    Args:
        G: The generator (its mapping network is used).
        num_samples: Number of samples (≥ 10 000 is what truncation needs to be stable).
        seed: Seed of the CPU generator that draws ``z`` (device-independent).
        batch: Samples per mapping pass.

    Returns:
        ``[w_dim]`` mean of the mapped codes.
    """
    gen = torch.Generator().manual_seed(seed)
    device = G.w_avg.device
    total = torch.zeros(G.w_dim, dtype=torch.float64, device=device)
    done = 0
    with torch.no_grad():
        while done < num_samples:
            n = min(batch, num_samples - done)
            z = torch.randn(n, G.z_dim, generator=gen).to(device)
            total += G.mapping(z)[:, 0].double().sum(dim=0)
            done += n
    return (total / num_samples).float()


def _set_or_estimate_w_avg(G: Generator, w_avg: torch.Tensor | None, path: Path) -> None:
    if w_avg is not None:
        G.mapping.w_avg.copy_(w_avg)
        G.source["w_avg"] = "checkpoint"
        return
    G.mapping.w_avg.copy_(estimate_w_avg(G))
    G.source["w_avg"] = f"estimated from {W_AVG_SAMPLES} samples, seed {W_AVG_SEED}"
    warnings.warn(
        f"{path}: the checkpoint stores no average latent; estimated w_avg from "
        f"{W_AVG_SAMPLES} mapped samples (seed {W_AVG_SEED})",
        stacklevel=3,
    )


def _check_fir(name: str, value: torch.Tensor, gain: float, path: Path) -> None:
    """Fixed resampling filters are not parameters: only accept StyleGAN2's own."""
    expected = _fir_kernel() * gain
    if tuple(value.shape) != (4, 4) or not torch.allclose(value.float(), expected, atol=1e-6):
        raise CheckpointError(
            f"{path}: {name} is not StyleGAN2's [1, 3, 3, 1] resampling filter "
            "(unsupported architecture)"
        )


# ---------------------------------------------------------------------------------------------
# micromotion safetensors.


def _read_safetensors(path: Path) -> Generator:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            state = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: corrupt safetensors file ({exc})") from exc
    if meta.get("format") != GENERATOR_FORMAT:
        what = meta.get("format", "no micromotion metadata")
        raise CheckpointError(f"{path}: not a micromotion generator file ({what})")
    try:
        config = GeneratorConfig.from_dict(json.loads(meta["config"]))
        prov = json.loads(meta.get("provenance", "{}"))
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: unreadable generator config in metadata ({exc})") from exc
    G = _build(config, state, path)
    G.source = {"format": "micromotion-safetensors", **(prov.get("source") or {})}
    return G


# ---------------------------------------------------------------------------------------------
# rosinality/stylegan2-pytorch.


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


def _rosinality_key_map(config: GeneratorConfig) -> list[tuple[str, str, str]]:
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


def _from_rosinality(obj: Any, path: Path) -> Generator:
    sd, latent_avg = _find_rosinality_state(obj, path)
    config = _rosinality_config(sd, path)
    triples = _rosinality_key_map(config)
    fixed = _rosinality_fixed_buffers(config)
    theirs_expected = {t for _, t, _ in triples} | set(fixed)
    _check_keys(theirs_expected, set(sd), path, "not a rosinality StyleGAN2 generator")
    for name in fixed:
        _check_fir(name, sd[name], 4.0, path)
    state: dict[str, torch.Tensor] = {}
    for ours, theirs, how in triples:
        try:
            state[ours] = _RESHAPE[how](sd[theirs])
        except (IndexError, RuntimeError) as exc:
            raise CheckpointError(
                f"{path}: tensor {theirs} has unexpected shape {list(sd[theirs].shape)}"
            ) from exc
    state["mapping.w_avg"] = torch.zeros(config.w_dim)
    G = _build(config, state, path)
    G.source = {"format": "rosinality"}
    _set_or_estimate_w_avg(G, _normalise_latent_avg(latent_avg, config, path), path)
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
        raise CheckpointError(f"{path}: per-layer latent_avg with different rows is not supported")
    return t[0]


def rosinality_state_dict(G: Generator) -> dict[str, torch.Tensor]:
    """Return ``G``'s weights as a rosinality ``g_ema`` state dict (for export and tests)."""
    ours = G.state_dict()
    sd = {
        theirs: _UNRESHAPE[how](ours[o]).clone() for o, theirs, how in _rosinality_key_map(G.config)
    }
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


# ---------------------------------------------------------------------------------------------
# NVIDIA stylegan2-ada-pytorch / stylegan3 (StyleGAN2 networks).

_NVIDIA_FIR_KEY = re.compile(r"(^|\.)resample_filter$")


def nvidia_state_dict(G: Generator) -> dict[str, torch.Tensor]:
    """Return ``G``'s weights with NVIDIA's key names, FIR buffers included (for tests/export)."""
    sd = {k: v.detach().clone() for k, v in G.state_dict().items()}
    for res in G.config.resolutions:
        sd[f"synthesis.b{res}.resample_filter"] = _fir_kernel()
        if res > 4:
            sd[f"synthesis.b{res}.conv0.resample_filter"] = _fir_kernel()
        sd[f"synthesis.b{res}.conv1.resample_filter"] = _fir_kernel()
    return sd


def nvidia_init_kwargs(G: Generator) -> dict[str, Any]:
    """Return NVIDIA ``Generator`` init kwargs describing ``G`` (for tests/export)."""
    c = G.config
    return {
        "z_dim": c.z_dim,
        "c_dim": 0,
        "w_dim": c.w_dim,
        "img_resolution": c.img_resolution,
        "img_channels": c.img_channels,
        "mapping_kwargs": {
            "num_layers": c.mapping_layers,
            "layer_features": c.mapping_features,
            "lr_multiplier": c.mapping_lr_mul,
        },
        "synthesis_kwargs": {
            "channel_base": c.channels[-1] * c.img_resolution,
            "channel_max": max(c.channels),
            "num_fp16_res": 0,
            "conv_clamp": c.conv_clamp,
            "architecture": "skip",
            "use_noise": c.use_noise,
        },
    }


def _from_nvidia(record: Any, path: Path) -> Generator:
    kwargs = dict(record.init_kwargs or {})
    if record.init_args:
        raise CheckpointError(f"{path}: positional init args in the pickle are not supported")
    mapping_kwargs = dict(kwargs.get("mapping_kwargs") or {})
    # stylegan2-ada nests the synthesis settings in synthesis_kwargs; the stylegan3 repo's
    # StyleGAN2 Generator takes them (channel_base, conv_clamp, ...) as top-level kwargs.
    synthesis_kwargs = {**kwargs, **dict(kwargs.get("synthesis_kwargs") or {})}
    if int(kwargs.get("c_dim", 0) or 0) != 0:
        raise CheckpointError(f"{path}: conditional generators (c_dim > 0) are not supported yet")
    architecture = synthesis_kwargs.get("architecture", "skip")
    if architecture != "skip":
        raise CheckpointError(
            f"{path}: synthesis architecture {architecture!r} is not supported yet (only 'skip')"
        )
    sd = record.state_dict()
    for name in [k for k in sd if _NVIDIA_FIR_KEY.search(k)]:
        _check_fir(name, sd.pop(name), 1.0, path)
    try:
        img_resolution = int(kwargs["img_resolution"])
        resolutions = [2**i for i in range(2, int(math.log2(img_resolution)) + 1)]
        channels = tuple(int(sd[f"synthesis.b{r}.conv1.weight"].shape[0]) for r in resolutions)
        num_layers = int(mapping_kwargs.get("num_layers", 8))
        w_dim = int(kwargs["w_dim"])
        hidden = int(sd["mapping.fc0.weight"].shape[0]) if num_layers > 1 else w_dim
        config = GeneratorConfig(
            img_resolution=img_resolution,
            channels=channels,
            z_dim=int(kwargs["z_dim"]),
            w_dim=w_dim,
            img_channels=int(kwargs.get("img_channels", 3)),
            mapping_layers=num_layers,
            mapping_features=None if hidden == w_dim else hidden,
            mapping_lr_mul=float(mapping_kwargs.get("lr_multiplier", 0.01)),
            conv_clamp=synthesis_kwargs.get("conv_clamp"),
            use_noise=bool(synthesis_kwargs.get("use_noise", True)),
        )
    except KeyError as exc:
        raise CheckpointError(f"{path}: incomplete NVIDIA generator (missing {exc})") from exc
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: unsupported NVIDIA generator ({exc})") from exc
    # NVIDIA's mapping network always tracks w_avg, so a missing one is a broken file.
    G = _build(config, sd, path)
    G.source = {"format": "nvidia-pkl", "class": record.class_name, "w_avg": "checkpoint"}
    return G


__all__ = [
    "GENERATOR_FORMAT",
    "MicromotionError",
    "detect_format",
    "estimate_w_avg",
    "load_generator",
    "nvidia_init_kwargs",
    "nvidia_state_dict",
    "read_generator_file",
    "rosinality_state_dict",
    "save_generator",
    "save_rosinality",
    "state_dict_fingerprint",
]
