"""One page of curves for ``micromotion evaluate --compare``, drawn with Pillow.

Each panel is one per-frame score (the pixel step between consecutive frames, LPIPS, ArcFace
identity to frame 0, CLIP similarity to the frame's degree) against the frame index, one line
per compared micromotion (its mean over the faces, with ±1 std whiskers). Frame ``i`` of a
micromotion is its strength times ``i/(frames−1)``; the legend gives each strength. Below
the panels, a table of the summary numbers and the direction cosines.

The image is returned as an array; :func:`micromotion.pipelines.evaluate.compare` writes it
with the report (matplotlib is not a dependency).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: Page width in pixels, and each panel's height.
PLOT_WIDTH = 960
PANEL_HEIGHT = 220
_LINE = 14  # table line height
_BACKGROUND = (255, 255, 255)
_INK = (40, 40, 40)
_GRID = (225, 225, 225)
#: One colour per micromotion, in order (repeats after eight).
_SERIES = (
    (66, 110, 190),
    (221, 120, 40),
    (60, 160, 90),
    (190, 60, 60),
    (140, 110, 180),
    (140, 90, 60),
    (210, 110, 180),
    (110, 110, 110),
)
#: The panels, in order: curve key, title, whether the x axis is steps between frames.
_PANELS = (
    ("pixel_step", "pixel RMSE between consecutive frames (lower: smoother)", True),
    ("lpips_step", "LPIPS between consecutive frames", True),
    ("identity_to_first", "ArcFace identity cosine to frame 0", False),
    ("clip_similarity", "CLIP cosine to the frame's degree prompt", False),
)


def draw_comparison(report: Mapping[str, Any], *, width: int = PLOT_WIDTH) -> np.ndarray:
    """Draw a comparison report's curves and summary as ``uint8 [H, W, 3]``.

    Args:
        report: What :func:`~micromotion.pipelines.evaluate.compare` returns
            (``micromotions`` with their ``curves`` and ``summary``, and
            ``transfer_consistency``).
        width: Page width in pixels (the height follows from the panels and table).
    """
    sections = list(report["micromotions"])
    panels = [p for p in _PANELS if any(p[0] in s["curves"] for s in sections)]
    table = _table(report)
    height = PANEL_HEIGHT * len(panels) + _LINE * (len(table) + 2) + 16
    image = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    for row, (key, title, steps) in enumerate(panels):
        box = (0, row * PANEL_HEIGHT, width, PANEL_HEIGHT)
        _panel(draw, font, box, title, sections, key, steps)
    y = PANEL_HEIGHT * len(panels) + 8
    for i in range(len(sections)):  # the legend: a colour square by each micromotion's row
        colour = _SERIES[i % len(_SERIES)]
        draw.rectangle((8, y + _LINE * (i + 1) + 3, 18, y + _LINE * (i + 1) + 11), fill=colour)
    for cells in table:
        if len(cells) == 1:  # a caption spans the row
            draw.text((_COLUMNS[0], y), cells[0], fill=_INK, font=font)
        else:
            # Matrix rows (indented labels) hold one cell per micromotion, closer together.
            matrix = cells[0].startswith("  ")
            xs = [_COLUMNS[0]] + [_COLUMNS[1] + 64 * k for k in range(len(cells))]
            for x, cell in zip(xs if matrix else _COLUMNS, cells, strict=False):
                draw.text((x, y), cell, fill=_INK, font=font)
        y += _LINE
    return np.asarray(image)


def _panel(
    draw: ImageDraw.ImageDraw,
    font: Any,
    box: tuple[int, int, int, int],
    title: str,
    sections: Sequence[Mapping[str, Any]],
    key: str,
    steps: bool,
) -> None:
    x, y, w, h = box
    draw.text((x + 56, y + 4), title, fill=_INK, font=font)
    left, top, right, bottom = x + 56, y + 20, x + w - 16, y + h - 22
    draw.rectangle((left, top, right, bottom), outline=_INK)
    series = [(i, s["curves"][key]) for i, s in enumerate(sections) if key in s["curves"]]
    values = [
        v
        for _, c in series
        for m, d in zip(c["mean"], c["std"], strict=True)
        for v in (m - d, m + d)
        if math.isfinite(v)
    ]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    for frac in (0.0, 0.5, 1.0):
        yy = bottom - frac * (bottom - top)
        draw.line((left + 1, yy, right - 1, yy), fill=_GRID)
        draw.text((x + 2, yy - 6), f"{low + frac * (high - low):.3g}", fill=_INK, font=font)
    count = max(len(c["mean"]) for _, c in series)
    first = 1 if steps else 0  # a step i sits between frames i − 1 and i: draw it at i

    def at(k: int, v: float) -> tuple[float, float]:
        span = max(1, count - 1 + first) if count > 1 else 1
        px = left + 4 + (right - left - 8) * (k + first) / span
        return px, bottom - 2 - (v - low) / (high - low) * (bottom - top - 4)

    for i, curve in series:
        colour = _SERIES[i % len(_SERIES)]
        points = [at(k, v) for k, v in enumerate(curve["mean"])]
        for k, (m, d) in enumerate(zip(curve["mean"], curve["std"], strict=True)):
            if d > 0:
                draw.line((at(k, m - d), at(k, m + d)), fill=colour)
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for px, py in points:
            draw.ellipse((px - 2, py - 2, px + 2, py + 2), fill=colour)
    frames = count + first
    every = max(1, math.ceil(frames / 16))
    for k in range(0, frames, every):
        px, _ = at(k - first, low)
        draw.text((px - 3, bottom + 4), str(k), fill=_INK, font=font)
    draw.text((x + 4, bottom + 4), "frame", fill=_INK, font=font)


def _fmt(summary: Mapping[str, Any], key: str) -> str:
    stats = summary.get(key)
    if not stats:
        return "-"
    return f"{stats['mean']:.4f}±{stats['std']:.2g}"


#: Left edge of each table column, in pixels (the default font is proportional).
_COLUMNS = (24, 220, 300, 420, 540, 660, 780)


def _table(report: Mapping[str, Any]) -> list[list[str]]:
    """Table rows of cells: header, one row per micromotion, then the cosine matrix."""
    rows = [["micromotion", "strength", "pixel step", "TL-ID rel", "TG-ID rel", "CLIP sim",
             "CLIP dir"]]  # fmt: skip
    for s in report["micromotions"]:
        m = s["summary"]
        keys = ("pixel_step_mean", "tl_id_relative", "tg_id_relative", "clip_similarity",
                "directional_similarity")  # fmt: skip
        rows.append([s["label"][:28], _strength(s), *(_fmt(m, k) for k in keys)])
    consistency = report.get("transfer_consistency") or {}
    labels = consistency.get("labels", [])
    if len(labels) > 1:
        rows.append(["direction cosine over the layers both move (transfer consistency):"])
        for label, row in zip(labels, consistency["matrix"], strict=True):
            rows.append([f"  {label[:26]}", *("-" if v is None else f"{v:+.3f}" for v in row)])
    return rows


def _strength(section: Mapping[str, Any]) -> str:
    """The strength, in σ for a GANSpace direction scaled so (its unit differs from the rest)."""
    baseline = section.get("baseline") or {}
    # "sd", not "σ": Pillow's bitmap fallback font (no FreeType) encodes Latin-1 only.
    unit = " sd" if baseline.get("method") == "ganspace" and baseline.get("scale") == "std" else ""
    return f"{section['strength']:.4g}{unit}"


__all__ = ["PANEL_HEIGHT", "PLOT_WIDTH", "draw_comparison"]
