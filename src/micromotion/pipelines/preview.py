"""Previews for front ends: upload checks, a clip re-encoded as a GIF, and a micromotion's plot.

The web app (:mod:`micromotion.web`) may not touch pixels or tensors, so everything it shows
that is not written by another pipeline is made here: a photo or video is checked against
the page's limits before any network runs (:func:`check_photo`, :func:`check_video`), a
rendered MP4 becomes a GIF without rendering the frames again (:func:`clip_to_gif`), and a
micromotion's per-layer norms and singular-value spectrum are drawn as a PNG with matplotlib
(:func:`plot_micromotion`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from micromotion.core.outputs import OutputSet
from micromotion.errors import MicromotionError, ParameterError
from micromotion.media.images import read_rgb, save_png
from micromotion.media.video_in import VideoInfo, probe_video, read_video_frames
from micromotion.media.video_out import open_clip_writer
from micromotion.pipelines import figures

#: Longest side of a GIF made from a clip: GIFs hold every frame uncompressed in memory while
#: they are written, and 512 px keeps a 100-frame 1024 px clip at a few tens of megabytes.
GIF_MAX_SIDE = 512


@dataclass(frozen=True)
class PhotoInfo:
    """A checked photo.

    Attributes:
        width: Pixels across (after EXIF orientation).
        height: Pixels down.
    """

    width: int
    height: int


def check_photo(path: str | os.PathLike[str], *, max_pixels: int) -> PhotoInfo:
    """Read a photo as the pipelines will, refusing it past ``max_pixels``.

    Args:
        path: The uploaded file.
        max_pixels: Most pixels accepted (checked from the header, before decoding).

    Raises:
        MicromotionError: Not an image, or too large; the message names the file.
    """
    if max_pixels < 1:
        raise ParameterError("max_pixels", f"{max_pixels}: must be at least 1")
    height, width = read_rgb(path, limit=max_pixels).shape[:2]
    return PhotoInfo(int(width), int(height))


def check_video(
    path: str | os.PathLike[str],
    *,
    max_seconds: float,
    max_frames: int,
    max_pixels: int,
) -> VideoInfo:
    """Probe a video and refuse one that is longer, has more frames or is larger than allowed.

    Args:
        path: The uploaded file.
        max_seconds: Longest duration accepted.
        max_frames: Most frames accepted.
        max_pixels: Most pixels per frame accepted.

    Raises:
        MicromotionError: Not a video, or over a limit; the message says which and by how much.
    """
    info = probe_video(Path(path))
    name = Path(path).name
    if info.duration > max_seconds:
        raise MicromotionError(
            f"{name}: {info.duration:.1f} s long, over the limit of {max_seconds:g} s; "
            "trim the clip to the motion"
        )
    if info.num_frames > max_frames:
        raise MicromotionError(
            f"{name}: {info.num_frames} frames, over the limit of {max_frames}; "
            "trim the clip or lower its frame rate"
        )
    if info.width * info.height > max_pixels:
        raise MicromotionError(
            f"{name}: frames of {info.width}x{info.height}, over the limit of "
            f"{max_pixels / 1e6:g} MP per frame"
        )
    return info


def clip_to_gif(
    clip: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    fps: float | None = None,
    max_side: int = GIF_MAX_SIDE,
    comment: str | None = None,
) -> Path:
    """Re-encode a written clip as an animated GIF, without rendering its frames again.

    Args:
        clip: An MP4 (or anything ffmpeg reads), as
            :func:`~micromotion.pipelines.animate.animate` writes it.
        output: The ``.gif`` to write (atomically: it appears whole or not at all).
        fps: Frame rate (default: the clip's).
        max_side: Frames larger than this are scaled down to it (aspect kept).
        comment: Text embedded in the GIF (default: the clip's record ``CLIP.json`` beside it
            when there is one, so the GIF carries the same provenance).

    Returns:
        ``output``.

    Raises:
        MicromotionError: An unreadable clip, or an output that is not a ``.gif``.
    """
    clip, output = Path(clip), Path(output)
    if output.suffix.lower() != ".gif":
        raise MicromotionError(f"{output}: the output must end in .gif")
    if max_side < 16:
        raise ParameterError("max_side", f"{max_side}: must be at least 16")
    info = probe_video(clip)
    rate = info.fps if fps is None else fps
    if comment is None:
        sidecar = clip.with_name(clip.name + ".json")
        comment = sidecar.read_text(encoding="utf-8") if sidecar.is_file() else ""
    frames = read_video_frames(clip)  # [T, H, W, 3]
    height, width = frames.shape[1:3]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        frames = np.stack(
            [np.asarray(Image.fromarray(f).resize(size, Image.Resampling.LANCZOS)) for f in frames]
        )
    outputs = OutputSet({"gif": output}, reads=[clip])
    with (
        outputs,
        open_clip_writer(
            outputs.path("gif"), fps=rate, total_frames=len(frames), comment=comment, suffix=".gif"
        ) as sink,
    ):
        sink.write(frames)
    return output


# ---------------------------------------------------------------------------------------------
# The micromotion plot
# ---------------------------------------------------------------------------------------------

#: Singular values drawn per layer (the paper keeps rank 4; one more shows the gap after it).
PLOT_SINGULAR_VALUES = 5
#: Width of a layer's bar, in layers.
BAR_WIDTH = 0.7


def plot_micromotion(
    summary: Mapping[str, Any],
    output: str | os.PathLike[str],
    *,
    width: int = 720,
    reads: Sequence[object] = (),
) -> Path:
    """Draw a micromotion's per-layer ``|d|`` and singular values as a PNG.

    Args:
        summary: :meth:`Micromotion.summary() <micromotion.subspace.Micromotion.summary>`
            (``per_layer_norm``, ``layers`` and, when the file has them, ``singular_values``).
        output: The PNG to write.
        width: Width in pixels (each panel is ``width / 3`` high, at least 120).
        reads: The files the summary came from (the plot may not replace one of them).

    Returns:
        ``output``, with the summary's numbers embedded as a ``micromotion`` text chunk.
    """
    norms = [float(v) for v in summary["per_layer_norm"]]
    spectrum = summary.get("singular_values")
    moved = _moved_layers(str(summary.get("layers", "")), len(norms))
    panel = max(120, width // 3)
    panels = 2 if spectrum else 1
    figure = figures.new_figure(width, panel * panels)
    axes = figure.subplots(panels, 1, squeeze=False)[:, 0]
    # Margins in pixels, whatever the size: titles above, tick labels and the axis name below,
    # the spectrum's legend on the right.
    height = panel * panels
    figure.subplots_adjust(left=0.08, right=0.9, top=1 - 22 / height, bottom=40 / height,
                           hspace=60 / panel)  # fmt: skip
    bars = axes[0]
    colours = [figures.SERIES[0] if m else figures.MASKED for m in moved]
    bars.bar(range(len(norms)), norms, width=BAR_WIDTH, color=colours)
    bars.set_title("per-layer |d| (grey: a layer the edit does not move)", fontsize=9)
    bars.set_ylim(bottom=0)
    figures.layer_ticks(bars, len(norms))
    if spectrum:
        _spectrum(axes[1], [[float(v) for v in row[:PLOT_SINGULAR_VALUES]] for row in spectrum])
    axes[-1].set_xlabel("W+ layer", fontsize=8)
    for ax in axes:
        ax.tick_params(labelsize=7)
    image = figures.to_array(figure)
    out = Path(output)
    keep = {k: summary[k] for k in ("name", "per_layer_norm", "singular_values") if k in summary}
    with OutputSet({"plot": out}, reads=reads) as outputs:
        save_png(image, outputs.path("plot"), text={"micromotion": json.dumps(keep)})
    return out


def _moved_layers(text: str, count: int) -> list[bool]:
    """Which layers an edit moves, from ``"0-7"``-style text (all when it cannot be read)."""
    moved = [False] * count
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            low, _, high = part.partition("-")
            for i in range(int(low), int(high or low) + 1):
                if 0 <= i < count:
                    moved[i] = True
    except ValueError:
        return [True] * count
    return moved if any(moved) else [True] * count


def _spectrum(ax: Any, rows: list[list[float]]) -> None:
    """Singular values per layer on a log scale, one line per rank (σ₁ first)."""
    ax.set_title("singular values of the anchors per layer (log scale)", fontsize=9)
    figures.layer_ticks(ax, len(rows))
    drawn = False
    for rank in range(max(len(r) for r in rows)):
        points = [
            (i, r[rank]) for i, r in enumerate(rows) if len(r) > rank and math.isfinite(r[rank])
        ]
        points = [(i, v) for i, v in points if v > 0]  # a log scale has no zero
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.5, label=f"σ{rank + 1}",
                    color=figures.SERIES[rank % len(figures.SERIES)])  # fmt: skip
            drawn = True
    if not drawn:
        ax.text(0.5, 0.5, "no non-zero singular values", ha="center", va="center",
                transform=ax.transAxes, fontsize=9)  # fmt: skip
        return
    ax.set_yscale("log")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)


__all__ = [
    "GIF_MAX_SIDE",
    "PLOT_SINGULAR_VALUES",
    "PhotoInfo",
    "check_photo",
    "check_video",
    "clip_to_gif",
    "plot_micromotion",
]
