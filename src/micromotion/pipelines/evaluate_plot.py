"""One page of curves for ``micromotion evaluate --compare``, drawn with matplotlib.

Each panel is one per-frame score (the pixel step between consecutive frames, LPIPS, ArcFace
identity to frame 0, CLIP similarity to the frame's degree) against the edit's progress
``t = i/(frames−1)``: frame ``i`` of a micromotion of strength ``s`` is ``w + t·s·d``, so each
line runs from the unedited face to the full strength named in its legend (strengths of
different kinds of direction are in different units, so ``t``, not ``t·s``, is the shared
axis). Each line is the mean over the faces, with ±1 std error bars. Below the panels, a
table of the summary numbers and the direction cosines.

The image is returned as an array; :func:`micromotion.pipelines.evaluate.compare` writes it
with the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from micromotion.pipelines import figures

#: Page width in pixels, and each panel's height.
PLOT_WIDTH = 960
PANEL_HEIGHT = 220
#: Height of a table row, in pixels.
_ROW = 18
#: The panels, in order: curve key, title, whether the values sit between frames.
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
            (``micromotions`` with their ``curves``, ``frame_strengths`` and ``summary``,
            and ``transfer_consistency``).
        width: Page width in pixels (the height follows from the panels and table).
    """
    sections = list(report["micromotions"])
    panels = [p for p in _PANELS if any(p[0] in s["curves"] for s in sections)]
    table = _table(report)
    table_height = _ROW * (len(table) + 1)
    height = PANEL_HEIGHT * len(panels) + table_height + 24
    figure = figures.new_figure(width, height)
    # The panels take the top of the page; the table the rest (fractions of the height).
    top = 1 - 26 / height
    bottom = (table_height + 24 + 34) / height
    figure.subplots_adjust(left=0.08, right=0.98, top=top, bottom=bottom, hspace=0.6)
    axes = figure.subplots(max(1, len(panels)), 1, squeeze=False)[:, 0]
    for ax, (key, title, between) in zip(axes, panels, strict=False):
        _panel(ax, title, sections, key, between)
    if panels:
        axes[len(panels) - 1].set_xlabel("t = i / (frames − 1): frame i is w + t·s·d", fontsize=8)
        axes[0].legend(fontsize=7, loc="best", frameon=False)
    else:
        axes[0].set_axis_off()
    _draw_table(figure, table, height=table_height / height)
    return figures.to_array(figure)


def _panel(
    ax: Any, title: str, sections: Sequence[Mapping[str, Any]], key: str, between: bool
) -> None:
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(True, color="0.9")
    ax.set_xlim(-0.03, 1.03)
    for i, s in enumerate(sections):
        curve = s["curves"].get(key)
        if curve is None:
            continue
        frames = len(s["frame_strengths"])
        t = np.linspace(0.0, 1.0, frames)  # [T]
        # A step sits between frames i and i + 1: draw it half-way.
        x = (t[:-1] + t[1:]) / 2 if between else t
        ax.errorbar(
            x[: len(curve["mean"])], curve["mean"], yerr=curve["std"], marker="o", markersize=3,
            capsize=2, linewidth=1.5, color=figures.SERIES[i % len(figures.SERIES)],
            label=f"{s['label']} (s = {_strength(s)})",
        )  # fmt: skip


def _draw_table(figure: Any, rows: list[list[str]], *, height: float) -> None:
    """The summary table and the cosine matrix, as text rows at the foot of the page."""
    ax = figure.add_axes((0.02, 0.01, 0.96, height))
    ax.set_axis_off()
    count = len(rows) + 1
    for r, cells in enumerate(rows):
        y = 1 - (r + 0.5) / count
        if len(cells) == 1:  # a caption spans the row
            ax.text(0.0, y, cells[0], fontsize=8, va="center", transform=ax.transAxes)
            continue
        matrix = cells[0].startswith("  ")  # one cell per micromotion, closer together
        xs = [0.0] + [0.26 + 0.08 * k for k in range(len(cells) - 1)] if matrix else _COLUMNS
        for c, (x, cell) in enumerate(zip(xs, cells, strict=False)):
            colour = "black"
            if c == 0 and not matrix and r > 0:  # the micromotion's name in its line's colour
                colour = figures.SERIES[(r - 1) % len(figures.SERIES)]
            ax.text(
                x, y, cell, fontsize=8, va="center", color=colour,
                weight="bold" if r == 0 else "normal",
                family="monospace" if c > 0 else "sans-serif", transform=ax.transAxes,
            )  # fmt: skip


#: Left edge of each table column, as a fraction of the page width.
_COLUMNS = (0.0, 0.26, 0.36, 0.5, 0.63, 0.76, 0.88)


def _fmt(summary: Mapping[str, Any], key: str) -> str:
    stats = summary.get(key)
    if not stats:
        return "-"
    return f"{stats['mean']:.4f}±{stats['std']:.2g}"


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
    unit = " σ" if baseline.get("method") == "ganspace" and baseline.get("scale") == "std" else ""
    return f"{section['strength']:.4g}{unit}"


__all__ = ["PANEL_HEIGHT", "PLOT_WIDTH", "draw_comparison"]
