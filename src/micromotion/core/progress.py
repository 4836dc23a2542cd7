"""Progress reporting: the library calls a function, front ends draw it (tqdm, a web page).

Long work (inversion steps, rendered frames, decoded video frames) reports through a
:data:`Progress` callable ``progress(stage, done, total, note)``: ``stage`` names the work
(``"invert"``, ``"render"``...), ``done`` of ``total`` units are finished, and ``note`` is a
short status such as ``"loss 0.0123"``. Pipelines never print.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int, str], None]
"""``progress(stage, done, total, note)``."""


def stage_callback(
    progress: Progress | None, stage: str, total: int
) -> Callable[[int, float], None] | None:
    """A ``callback(step, loss)`` for an optimisation loop that reports one stage."""
    if progress is None:
        return None
    return lambda step, loss: progress(stage, step, total, f"loss {loss:.4f}")
