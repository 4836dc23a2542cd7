"""Encoder checkpoints (ReStyle, e4e, pSp) → an :class:`EncoderModel` and its generator.

The published files are ``torch.save``d dicts ``{"state_dict": encoder.* + decoder.*,
"opts": dict, "latent_avg": [n_styles, 512] or [512]}``, read with
``torch.load(weights_only=True)``. The architecture comes from ``opts``: ``encoder_type``
names the class, ``output_size`` the number of W+ entries (e4e stores ``stylegan_size``; old
pSp files lack it and ``learn_in_w``/``input_nc``: the published defaults, 1024 / ``False`` /
the method's channels, apply).
``decoder.*`` is the generator the encoder was trained with; :func:`micromotion.load_generator`
reads it from the same file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from micromotion.errors import CheckpointError
from micromotion.networks.encoders import ENCODERS, EncoderModel, num_styles
from micromotion.weights.state import check_state_dict, load_torch_file

#: Methods by encoder class: ReStyle iterates on [image, reconstruction], e4e/pSp run once.
METHODS = {
    "BackboneEncoder": "restyle-psp",
    "ProgressiveBackboneEncoder": "restyle-e4e",
    "GradualStyleEncoder": "psp",
    "Encoder4Editing": "e4e",
}
#: Defaults of the pSp-family ``opts`` when an older checkpoint lacks them.
OPTS_DEFAULTS = {"learn_in_w": False, "start_from_latent_avg": True}
#: Generator size when ``opts`` names none (pSp's inference default); e4e stores it as
#: ``stylegan_size`` instead of ``output_size``.
DEFAULT_OUTPUT_SIZE = 1024


def load_encoder(
    path: str | os.PathLike[str], *, device: str | torch.device = "cpu"
) -> EncoderModel:
    """Read a ReStyle / e4e / pSp checkpoint's encoder.

    Raises:
        CheckpointError: A missing, truncated, HTML or hostile file; missing ``opts``; an
            unknown ``encoder_type``; keys or shapes that do not fit — one line naming the file.
    """
    from micromotion.core.io import sha256_file

    path = Path(path)
    ckpt = load_torch_file(path, what="an encoder checkpoint")
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise CheckpointError(f"{path}: not an encoder checkpoint (no state_dict)")
    opts = ckpt.get("opts")
    if not isinstance(opts, dict):
        raise CheckpointError(f"{path}: not an encoder checkpoint (no opts to build it from)")
    opts = {**OPTS_DEFAULTS, **opts}
    opts.setdefault("output_size", opts.get("stylegan_size") or DEFAULT_OUTPUT_SIZE)
    kind = opts.get("encoder_type")
    if kind not in ENCODERS:
        known = ", ".join(ENCODERS)
        raise CheckpointError(f"{path}: unknown encoder_type {kind!r} (known: {known})")
    cls, default_nc = ENCODERS[kind]
    try:
        n = num_styles(int(opts["output_size"]))
        input_nc = int(opts.get("input_nc", default_nc))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: unusable opts ({exc})") from None
    if input_nc != default_nc:
        raise CheckpointError(
            f"{path}: {kind} with input_nc {input_nc}; its method feeds {default_nc} channels"
        )
    encoder = cls(n, input_nc)
    state = {
        k.removeprefix("encoder."): v
        for k, v in ckpt["state_dict"].items()
        if isinstance(k, str) and k.startswith("encoder.")
    }
    check_state_dict(
        state,
        encoder.state_dict(),
        path,
        problem=f"not a {kind} for {opts['output_size']} px",
        optional=[k for k in encoder.state_dict() if k.endswith("num_batches_tracked")],
    )
    # Checked above; older files may lack BatchNorm's num_batches_tracked counters.
    encoder.load_state_dict({**encoder.state_dict(), **state}, strict=True)
    latent_avg = ckpt.get("latent_avg")
    if not isinstance(latent_avg, torch.Tensor):
        raise CheckpointError(f"{path}: no latent_avg (the code the encoder adds to)")
    latent_avg = latent_avg.detach().float()
    if latent_avg.ndim == 1:
        latent_avg = latent_avg[None].repeat(n, 1)
    if tuple(latent_avg.shape) != (n, 512) or not torch.isfinite(latent_avg).all():
        raise CheckpointError(
            f"{path}: latent_avg {list(latent_avg.shape)} does not fit {n} W+ entries of 512"
        )
    encoder.eval().requires_grad_(False)
    source = {"file": str(path), "sha256": sha256_file(path), "encoder_type": kind}
    decoder = _decoder_fingerprint(ckpt, path)
    if decoder is not None:
        source["decoder_fingerprint"] = decoder
    return EncoderModel(
        encoder=encoder.to(device),
        method=METHODS[kind],
        latent_avg=latent_avg.to(device),
        opts=opts,
        source=source,
    )


def _decoder_fingerprint(ckpt: dict[str, Any], path: Path) -> str | None:
    """The fingerprint of the generator the encoder was trained with (its ``decoder.*``).

    Inversion compares it with the generator in use: an encoder's codes mean something only
    in the W+ space of the network it was trained for. ``None`` when the file holds no
    readable decoder (the check is then skipped, never a reason to refuse the encoder).
    """
    from micromotion.weights.formats.rosinality import from_rosinality

    if not any(isinstance(k, str) and k.startswith("decoder.") for k in ckpt["state_dict"]):
        return None
    try:
        # No w_avg: the fingerprint ignores it, and estimating one would warn and take time.
        return from_rosinality(ckpt, path, w_avg=False).fingerprint()
    except CheckpointError:
        return None


def open_encoder(
    spec: str | os.PathLike[str], *, device: str | torch.device = "cpu", progress: bool = True
) -> EncoderModel:
    """An encoder from a checkpoint file or a zoo name (``restyle-psp-ffhq``, …)."""
    from micromotion.hub import resolve

    path = resolve(
        spec, kind="encoder", progress=progress, what="an encoder checkpoint", check=load_encoder
    )
    return load_encoder(path, device=device)


__all__ = ["METHODS", "OPTS_DEFAULTS", "load_encoder", "open_encoder"]
