"""Figures as pixel arrays, drawn with matplotlib's Agg renderer.

Every plot the pipelines write (``info --plot``, the web app's spectrum, ``evaluate
--compare --plot``) is drawn here. Each figure is its own :class:`matplotlib.figure.Figure`
on its own Agg canvas, never pyplot's global state, so a web server's concurrent jobs cannot
draw into each other's figures; the result is an ``uint8 [H, W, 3]`` array of exactly the
requested width, which the callers save with their provenance (:func:`~micromotion.media.
images.save_png`), so matplotlib's own file metadata (a version, a date) never enters a file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Pixels per inch of every figure: widths and heights in pixels are inches × 100.
DPI = 100
#: One colour per series, in order (matplotlib's default cycle).
SERIES = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9")
#: Bars of layers an edit does not move.
MASKED = "0.75"


def new_figure(width: int, height: int) -> Figure:
    """A white figure of ``width × height`` pixels on its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)
    return figure


def to_array(figure: Figure) -> np.ndarray:
    """Render ``figure``: ``uint8 [H, W, 3]``."""
    canvas: Any = figure.canvas
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def layer_ticks(ax: Any, count: int) -> None:
    """Label every layer of a per-layer axis (every other one past 32)."""
    step = 1 if count <= 32 else 2
    ax.set_xticks(range(0, count, step))
    ax.set_xlim(-0.6, count - 0.4)


__all__ = ["DPI", "MASKED", "SERIES", "layer_ticks", "new_figure", "to_array"]
