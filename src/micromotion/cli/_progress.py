"""Progress bars for the CLI: one tqdm bar per stage a pipeline reports (hidden off a terminal)."""

from __future__ import annotations

from types import TracebackType

from tqdm import tqdm


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

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
