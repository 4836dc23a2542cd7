"""Micromotion files in and out.

Micromotion ``.safetensors``, the paper's ``d_latent`` tensors and zoo names, resolved by
:func:`micromotion.hub.resolve`. The paper's five directions also ship inside the package
(``weights/directions/``, MIT): a zoo name of one of them loads with no download.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from micromotion import hub
from micromotion.core.defaults import PACKAGED_DIRECTIONS as _PACKAGED_DIRECTIONS
from micromotion.errors import CheckpointError, MicromotionError
from micromotion.subspace.micromotion import Micromotion
from micromotion.weights.generator import detect_format
from micromotion.weights.state import load_torch_file

#: The paper's directions shipped in ``weights/directions/`` (built by
#: tools/package_directions.py); defined torch-free for the command line's help.
PACKAGED_DIRECTIONS = _PACKAGED_DIRECTIONS
_PACKAGED = Path(__file__).resolve().parent / "directions"


def packaged_metadata(entry: hub.ZooEntry) -> dict[str, str]:
    """What a shipped direction records about its source (URL, sha256, license)."""
    assert entry.sha256 is not None
    return {
        "source_url": entry.urls[0],
        "source_sha256": entry.sha256,
        "license": f"{entry.license} (see micromotion/weights/directions/LICENSE)",
        "packaged": "converted bit for bit from the published file by tools/package_directions.py",
    }


def packaged_direction(name: str) -> Path | None:
    """The shipped file of one of the paper's directions (by zoo name or alias), if any."""
    try:
        entry = hub.get(name, kind="direction")
    except MicromotionError:
        return None
    path = _PACKAGED / f"{entry.name}.safetensors"
    return path if entry.name in PACKAGED_DIRECTIONS and path.is_file() else None


def import_official(path: str | os.PathLike[str], *, name: str | None = None) -> Micromotion:
    """Read one of the paper's ``torch.save``d direction tensors safely (``weights_only``).

    Args:
        path: A ``d_latent`` file from the paper's repository (``[1, 18, 512]`` float32).
        name: Name to record (default: from the file name, e.g. ``smile.d_latent.pt``).

    Raises:
        CheckpointError: If the file is not such a tensor.
    """
    path = Path(path)
    obj = load_torch_file(path, what="a direction tensor")
    if not isinstance(obj, torch.Tensor):
        raise CheckpointError(f"{path}: expected a tensor, found a {type(obj).__name__}")
    if name is None:
        name = path.name.split(".")[0] if path.name != "d_latent" else path.resolve().parent.name
    try:
        return Micromotion.from_official(obj, name=name, file=path.name)
    except MicromotionError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc


def load_micromotion(spec: str | os.PathLike[str], *, progress: bool = True) -> Micromotion:
    """Load a micromotion from a file or a zoo name (``smile``, ``eyesClose``, ...).

    A micromotion ``.safetensors`` is read as is; one of the paper's raw ``d_latent`` torch
    files is imported on the fly; the paper's five directions by name (``smile``) come from
    the package itself; any other zoo name is downloaded and verified on first use and
    converted once into a micromotion file beside the download.

    Raises:
        MicromotionError: If ``spec`` is neither a readable file nor a known zoo direction.
    """
    path = Path(spec)
    shipped = None if path.is_file() else packaged_direction(str(spec))
    if shipped is not None:
        return Micromotion.load(shipped)
    if not path.is_file():
        raw = hub.resolve(
            spec, kind="direction", progress=progress, what="a micromotion file",
            check=import_official,
        )  # fmt: skip
        return Micromotion.load(ensure_converted(raw, name=hub.get(str(spec)).name))
    if detect_format(path) == "safetensors":
        return Micromotion.load(path)
    return import_official(path)


def ensure_converted(raw: Path, *, name: str) -> Path:
    """Convert a downloaded official direction into ``<raw>.safetensors`` once; return it."""
    out = raw.with_name(f"{name}.safetensors")
    if out.is_file() and out.stat().st_mtime >= raw.stat().st_mtime:
        try:
            mm = Micromotion.load(out)
        except CheckpointError:
            pass  # a damaged conversion is simply redone below
        else:
            official = import_official(raw, name=name)
            if torch.equal(mm.direction, official.direction):
                return out
    import_official(raw, name=name).save(out)
    return out
