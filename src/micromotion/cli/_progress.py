"""Progress bars for the CLI: one tqdm bar per stage a pipeline reports (hidden off a terminal)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")


class Bars:
    """A :data:`micromotion.core.progress.Progress` that draws tqdm bars on stderr.

    Use as a context manager so every bar is closed, also when the pipeline fails.
    """

    def __init__(self, unit: str = "it") -> None:
        self.unit = unit
        self._bars: dict[str, tqdm] = {}

    def __call__(self, stage: str, done: int, total: int, note: str = "") -> None:
        bar = self._bars.get(stage)
        if bar is None:
            bar = self._bars[stage] = tqdm(
                total=total, desc=stage[:60], unit=self.unit, disable=None, leave=False
            )
        bar.update(done - bar.n)
        if note:
            bar.set_postfix_str(note, refresh=False)

    def __enter__(self) -> Bars:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


def run_job(
    job: Callable[..., T], /, *args: Any, unit: str = "it", bars: bool = True, **kwargs: Any
) -> T:
    """Call a pipeline with tqdm bars as its ``progress`` callback; every bar is closed after.

    Args:
        job: The pipeline function.
        *args: Its positional arguments.
        unit: What the bars count (``"frame"``, ``"step"``).
        bars: ``False`` runs the job without bars (``progress=None``).
        **kwargs: Its keyword arguments.
    """
    with Bars(unit=unit) as progress:
        return job(*args, progress=progress if bars else None, **kwargs)
