"""Everything the pipelines write goes through here: output checks, file sets, atomic writes.

Every result is an :class:`~micromotion.core.outputs.OutputSet`, made before the work starts:
each path it will write is checked against each file the run reads (a clash is an error, not
a lost input) and against directories and unwritable places; the files are written to
temporary files and appear together, or not at all.

* :func:`check_output` / :func:`output_paths` / :func:`discovery_outputs` /
  :func:`write_discovery` — what the ``discover`` pipelines write for ``NAME.safetensors``:
  the micromotion file itself, ``NAME_anchors.npy`` (the anchor codes
  ``[n, num_ws, w_dim]``), ``NAME_strip.png`` (the anchors side by side, each labelled with
  its degree or frame, one row per face, with the record embedded; :func:`labelled_strip`)
  and ``NAME.json`` (the provenance record).
* :func:`photo_outputs` — the crop, reconstruction and code that animating a photo leaves
  beside its clip.
* :func:`check_outdir` and :func:`lock_dir` — an output directory, held by one run at a time.
* :func:`save_npy`, :func:`save_png_record`, :func:`save_record` — the writers, used on the
  temporary paths of an output set.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from micromotion.core.outputs import OutputSet, input_files, lock_dir
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


def discovery_outputs(output: Path, *, reads: Iterable[object] = ()) -> OutputSet:
    """The checked :class:`OutputSet` of a discovery: ``-o`` and its three side files."""
    return OutputSet(output_paths(check_output(output)), reads=input_files(*reads))


#: Height in px of the band under each row of a strip that holds its tiles' labels (the
#: default font is about 10 px high).
LABEL_BAND = 16


def labelled_strip(
    images: np.ndarray,
    labels: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
) -> np.ndarray:
    """Tile images side by side, one row per face, each tile's label in a band under it.

    Args:
        images: ``uint8`` ``[k, H, W, 3]`` (one row) or ``[F, k, H, W, 3]`` (one row per face).
        labels: One label per tile (the same for every row): a degree, a frame index.
        row_labels: One label per row (a seed), written in a column left of the row.

    Returns:
        ``uint8`` ``[F·(h + band), gutter + k·w, 3]``: tiles ``h`` =
        :data:`~micromotion.media.images.STRIP_HEIGHT` px high, a :data:`LABEL_BAND` band under
        each row when ``labels`` are given, and a gutter as wide as the widest row label.
    """
    rows = images[None] if images.ndim == 4 else images  # [F, k, H, W, 3]
    if rows.ndim != 5 or 0 in rows.shape[:2]:
        raise ValueError(f"expected [k, H, W, 3] or [F, k, H, W, 3] images, got {images.shape}")
    count = rows.shape[1]
    if labels is not None and len(labels) != count:
        raise ValueError(f"{len(labels)} labels for {count} tiles")
    if row_labels is not None and len(row_labels) != len(rows):
        raise ValueError(f"{len(row_labels)} row labels for {len(rows)} rows")
    strips = [make_strip(row) for row in rows]  # each [h, k·w, 3]
    height, width = strips[0].shape[:2]
    tile = width // count  # make_strip resizes every tile to the same width
    band = 0 if labels is None else LABEL_BAND
    font = ImageFont.load_default()
    # The text's own box, so it centres with the bitmap font and FreeType alike (anchor="mm"
    # is FreeType-only).
    sizes = {t: font.getbbox(t) for t in [*(labels or []), *(row_labels or [])]}
    gutter = 0
    if row_labels is not None:  # as wide as the widest row label, 4 px either side
        gutter = round(max(sizes[t][2] - sizes[t][0] for t in row_labels)) + 8
    canvas = Image.new("RGB", (gutter + width, len(rows) * (height + band)), (0, 0, 0))
    draw = ImageDraw.Draw(canvas)

    def centred(text: str, x: float, y: float) -> None:
        left, top, right, bottom = sizes[text]
        at = (round(x - (left + right) / 2), round(y - (top + bottom) / 2))
        draw.text(at, text, fill=(255, 255, 255), font=font)

    for r, strip in enumerate(strips):
        y = r * (height + band)
        canvas.paste(Image.fromarray(strip), (gutter, y))
        for i, text in enumerate(labels or []):
            centred(text, gutter + (i + 0.5) * tile, y + height + band / 2)
        if row_labels is not None:
            centred(row_labels[r], gutter / 2, y + height / 2)
    return np.asarray(canvas)


def write_discovery(
    outputs: OutputSet,
    *,
    micromotion: Micromotion,
    anchors: torch.Tensor,
    strip_images: np.ndarray,
    record: dict[str, Any],
    labels: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Write the micromotion, its anchors, a preview strip and a JSON record: all or none.

    Args:
        outputs: From :func:`discovery_outputs`, made before the work started.
        micromotion: The decoded micromotion.
        anchors: ``[n, num_ws, w_dim]`` anchor codes (``[F, n, num_ws, w_dim]`` for several
            faces), saved as they are.
        strip_images: ``uint8`` ``[k, H, W, 3]`` images for the preview strip (rendered
            anchors, or aligned video frames), or ``[F, k, H, W, 3]``: one row per face.
        record: Provenance (settings, seeds, generator fingerprint...).
        labels: Each tile's label, written under it (a degree, a frame index).
        row_labels: Each row's label, written left of it (a seed).

    Returns:
        The paths written, by role.
    """
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("micromotion", json.dumps(record, allow_nan=False))
    strip = labelled_strip(strip_images, labels, row_labels)
    with outputs as out:
        micromotion.save(out.path("micromotion"))
        save_npy(out.path("anchors"), anchors.detach().float().cpu().numpy())
        Image.fromarray(strip).save(out.path("strip"), format="PNG", pnginfo=info)
        save_record(out.path("record"), record)
    return dict(outputs.files)


def photo_outputs(output: Path) -> dict[str, Path]:
    """Where animating a photo saves its crop, reconstruction and code, beside ``output``."""
    stem = output.name.rsplit(".", 1)[0]
    return {
        "aligned": output.with_name(f"{stem}_aligned.png"),
        "recon": output.with_name(f"{stem}_recon.png"),
        "latent": output.with_name(f"{stem}_latent.npy"),
    }


def check_outdir(outdir: Path) -> Path:
    """An output directory: missing (it is created) or a directory, never a file."""
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise MicromotionError(f"{outdir}: exists and is not a directory")
    return outdir


def save_npy(path: Path, array: np.ndarray) -> Path:
    """Write a ``.npy`` array (never pickled: plain numbers only)."""
    with open(path, "wb") as fh:
        np.save(fh, np.asarray(array), allow_pickle=False)
    return Path(path)


def save_png_record(path: Path, image: np.ndarray, record: dict[str, Any]) -> Path:
    """Write ``uint8 [H, W, 3]`` as PNG, with ``record`` embedded as JSON text."""
    return save_png(image, path, text={"micromotion": json.dumps(record, allow_nan=False)})


def save_record(path: Path, record: dict[str, Any]) -> Path:
    """Write a provenance record as indented JSON (NaN refused)."""
    Path(path).write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    return Path(path)


__all__ = [
    "LABEL_BAND",
    "OutputSet",
    "check_outdir",
    "check_output",
    "discovery_outputs",
    "input_files",
    "labelled_strip",
    "lock_dir",
    "output_paths",
    "photo_outputs",
    "save_npy",
    "save_png_record",
    "save_record",
    "write_discovery",
]
