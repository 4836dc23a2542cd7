"""Generator files ↔ networks: one loader that detects the format and dispatches to it.

The architecture is always read from the file, never asked of the user. Nothing in a
checkpoint is executed: rosinality files go through ``torch.load(weights_only=True)`` and
NVIDIA pickles through a restricted unpickler that rebuilds data only
(:mod:`micromotion.weights.formats`). A spec that is not a file is a zoo name, resolved by
:func:`micromotion.hub.resolve`.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from micromotion.core.io import require_file
from micromotion.errors import CheckpointError
from micromotion.hub import resolve
from micromotion.networks.stylegan2 import Generator
from micromotion.weights.formats._build import W_AVG_SAMPLES, W_AVG_SEED, estimate_w_avg
from micromotion.weights.formats.nvidia import nvidia_init_kwargs, nvidia_state_dict, read_nvidia
from micromotion.weights.formats.rosinality import (
    read_rosinality,
    rosinality_state_dict,
    save_rosinality,
)
from micromotion.weights.formats.safetensors import (
    GENERATOR_FORMAT,
    read_safetensors,
    write_safetensors,
)

__all__ = [
    "GENERATOR_FORMAT",
    "W_AVG_SAMPLES",
    "W_AVG_SEED",
    "detect_format",
    "estimate_w_avg",
    "load_generator",
    "nvidia_init_kwargs",
    "nvidia_state_dict",
    "read_generator_file",
    "rosinality_state_dict",
    "save_generator",
    "save_rosinality",
]


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
    loaded: list[Generator] = []  # a download checked on first use is not read twice
    path = resolve(
        spec,
        kind="generator",
        progress=progress,
        check=lambda p: loaded.append(read_generator_file(p)),
    )
    G = loaded[0] if loaded else read_generator_file(path)
    G.eval().requires_grad_(False)
    return G.to(device)


def read_generator_file(path: str | os.PathLike[str]) -> Generator:
    """Read a generator checkpoint of any supported format (see :func:`load_generator`)."""
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "safetensors":
        G = read_safetensors(path)
    elif fmt == "torch":
        G = read_rosinality(path)
    else:
        G = read_nvidia(path)
    G.source.setdefault("file", str(path))
    return G


def save_generator(
    G: Generator, path: str | os.PathLike[str], *, extra: Mapping[str, Any] | None = None
) -> Path:
    """Write ``G`` as micromotion ``.safetensors``.

    See :func:`micromotion.weights.formats.safetensors.write_safetensors`.
    """
    return write_safetensors(G, path, extra=extra)


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
