"""micromotion's own generator format: ``.safetensors`` whose metadata holds the config.

Tensor names are our module's state-dict keys (NVIDIA's vocabulary); the metadata holds the
:class:`~micromotion.networks.stylegan2.GeneratorConfig` as JSON and the provenance.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from micromotion.core.io import save_safetensors
from micromotion.core.provenance import provenance
from micromotion.errors import CheckpointError
from micromotion.networks.stylegan2 import Generator, GeneratorConfig
from micromotion.weights.formats._build import build

#: Format tag stored in our safetensors metadata.
GENERATOR_FORMAT = "micromotion-generator"
GENERATOR_FORMAT_VERSION = "1"


def read_safetensors(path: Path) -> Generator:
    """Read a micromotion generator ``.safetensors`` (see :func:`write_safetensors`).

    Raises:
        CheckpointError: If the file is corrupt or not a micromotion generator file.
    """
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
    G = build(config, state, path)
    G.source = {"format": "micromotion-safetensors", **(prov.get("source") or {})}
    return G


def write_safetensors(
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
    save_safetensors(tensors, path, meta)
    return path
