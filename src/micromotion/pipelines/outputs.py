"""Everything the pipelines write goes through here: output checks, file sets, atomic writes.

* :func:`check_output` / :func:`output_paths` / :func:`write_discovery` — what the
  ``discover`` pipelines write for ``NAME.safetensors``: the micromotion file itself,
  ``NAME_anchors.npy`` (the anchor codes ``[n, num_ws, w_dim]``), ``NAME_strip.png`` (the
  anchors side by side, with the record embedded) and ``NAME.json`` (the provenance record),
  all written to temporary files first and renamed into place only once every file is complete.
* :func:`photo_outputs` — the crop, reconstruction and code that animating a photo leaves
  beside its clip; :func:`check_no_clash` refuses a run that would overwrite one of its inputs.
* :func:`check_outdir`, :func:`write_npy`, :func:`write_png`, :func:`write_record` — the
  other writers, each atomic (:func:`micromotion.core.io.atomic_path`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from micromotion.core.io import atomic_path, write_json_atomic
from micromotion.errors import MicromotionError
from micromotion.media.images import make_strip, save_png
from micromotion.subspace.micromotion import Micromotion


def check_output(output: Path) -> Path:
    """Validate ``-o``: must be ``NAME.safetensors`` (checked before any long work starts)."""
    output = Path(output)
    if not output.name.endswith(".safetensors") or output.name == ".safetensors":
        raise MicromotionError(f"{output}: the output must be NAME.safetensors")
    if output.is_dir():
        raise MicromotionError(f"{output}: is a directory")
    return output


def output_paths(output: Path) -> dict[str, Path]:
    """The files written for ``-o output``, by role."""
    stem = output.name.removesuffix(".safetensors")
    return {
        "micromotion": output,
        "anchors": output.with_name(f"{stem}_anchors.npy"),
        "strip": output.with_name(f"{stem}_strip.png"),
        "record": output.with_name(f"{stem}.json"),
    }


def write_discovery(
    output: Path,
    *,
    micromotion: Micromotion,
    anchors: torch.Tensor,
    strip_images: np.ndarray,
    record: dict[str, Any],
) -> dict[str, Path]:
    """Write the micromotion, its anchors, a preview strip and a JSON record, atomically.

    Args:
        output: ``NAME.safetensors``.
        micromotion: The decoded micromotion.
        anchors: ``[n, num_ws, w_dim]`` anchor codes.
        strip_images: ``uint8`` ``[k, H, W, 3]`` images for the preview strip (rendered
            anchors, or aligned video frames).
        record: Provenance (settings, seeds, generator fingerprint...).

    Returns:
        The paths written, by role.
    """
    from PIL.PngImagePlugin import PngInfo

    paths = output_paths(output)
    text = json.dumps(record, allow_nan=False)
    info = PngInfo()
    info.add_text("micromotion", text)
    strip = make_strip(strip_images)
    # Nest the atomic writes: every file exists as a complete temporary file before the first
    # rename, so an error on any of them leaves none of the outputs behind.
    with contextlib.ExitStack() as stack:
        tmp = {role: stack.enter_context(atomic_path(p)) for role, p in paths.items()}
        micromotion.save(tmp["micromotion"])
        with open(tmp["anchors"], "wb") as fh:
            np.save(fh, anchors.detach().float().cpu().numpy())
        Image.fromarray(strip).save(tmp["strip"], format="PNG", pnginfo=info)
        tmp["record"].write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    return paths


def photo_outputs(output: Path) -> dict[str, Path]:
    """Where animating a photo saves its crop, reconstruction and code, beside ``output``."""
    stem = output.name.rsplit(".", 1)[0]
    return {
        "aligned": output.with_name(f"{stem}_aligned.png"),
        "recon": output.with_name(f"{stem}_recon.png"),
        "latent": output.with_name(f"{stem}_latent.npy"),
    }


def check_no_clash(writes: Iterable[Path], reads: Iterable[Path]) -> None:
    """Refuse, before any work, a run that would write over one of its own inputs.

    Paths are compared resolved (links followed), so ``./a.png`` and ``a.png`` clash.

    Raises:
        MicromotionError: Naming the input and the output that would replace it.
    """
    inputs = {Path(p).resolve(): Path(p) for p in reads}
    for out in writes:
        hit = inputs.get(Path(out).resolve())
        if hit is not None:
            raise MicromotionError(f"{hit}: would be overwritten by this run's {Path(out).name}")


def check_outdir(outdir: Path) -> Path:
    """An output directory: missing (it is created) or a directory, never a file."""
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise MicromotionError(f"{outdir}: exists and is not a directory")
    return outdir


def write_npy(path: Path, array: np.ndarray) -> Path:
    """Write a ``.npy`` array atomically (never pickled: plain numbers only)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.asarray(array), allow_pickle=False)
    return Path(path)


def write_png(path: Path, image: np.ndarray, record: dict[str, Any]) -> Path:
    """Write ``uint8 [H, W, 3]`` as PNG atomically, with ``record`` embedded as JSON text."""
    return save_png(image, path, text={"micromotion": json.dumps(record, allow_nan=False)})


def write_record(path: Path, record: dict[str, Any]) -> Path:
    """Write a provenance record as indented JSON, atomically."""
    write_json_atomic(path, record)
    return Path(path)
