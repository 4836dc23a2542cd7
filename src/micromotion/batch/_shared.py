"""What both engines share: grouping rows, skipping finished ones, counting cores."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from micromotion.batch.manifest import Job, Manifest
from micromotion.batch.rows import ReportWriter, RowResult, finished_files
from micromotion.core.progress import Progress
from micromotion.errors import MicromotionError, ParameterError
from micromotion.networks.stylegan2 import Generator
from micromotion.pipelines._load import open_generator


def cpu_count() -> int:
    """The cores this process may use (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


Tick = Callable[[ReportWriter, RowResult], None]


def ticker(progress: Progress | None, total: int) -> Tick:
    """Record each row's result and report progress over all rows."""
    done = 0

    def tick(report: ReportWriter, result: RowResult) -> None:
        nonlocal done
        report.add(result)
        done += 1
        if progress is not None:
            label = result.name or f"row {result.number}"
            progress("rows", done, total, f"{label}: {result.status}")

    return tick


def groups_of(jobs: list[Job]) -> list[list[Job]]:
    """Jobs grouped by generator and inverter, groups in order of first appearance."""
    groups: dict[tuple[str, str], list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.group, []).append(job)
    return list(groups.values())


class Fingerprints:
    """Generator fingerprints, each computed once, on networks the active cache holds."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._known: dict[str, str] = {}

    def __call__(self, spec: str) -> str:
        """The fingerprint of the generator ``spec`` names."""
        if spec not in self._known:
            G, _ = open_generator(spec, self.device)
            self._known[spec] = G.fingerprint()
        return self._known[spec]


def skip_finished(
    jobs: list[Job], out: Path, report: ReportWriter, tick: Tick, fingerprint: Fingerprints
) -> list[Job]:
    """Report finished rows as skipped; return the rest."""
    pending = []
    for job in jobs:
        files = finished_files(job, out, fingerprint)  # the record read and checked once
        if files is not None:
            tick(report, RowResult(job.number, job.name, job.kind, "skipped", None, 0.0, files))
        else:
            pending.append(job)
    return pending


def fail_all(jobs: list[Job], error: MicromotionError, report: ReportWriter, tick: Tick) -> None:
    """Rows that cannot start (their generator is missing): each fails with the one error."""
    text = error.render({}) if isinstance(error, ParameterError) else str(error)
    for job in jobs:
        tick(report, RowResult(job.number, job.name, job.kind, "failed",
                               f"row {job.number}: {text}"))  # fmt: skip


def runnable_groups(
    jobs: list[Job],
    out: Path,
    report: ReportWriter,
    tick: Tick,
    fingerprint: Fingerprints,
    device: str,
) -> Iterator[tuple[list[Job], Generator]]:
    """Each group's rows still to run, with the group's generator (loaded, or cached).

    Finished rows are reported as skipped; a group whose generator cannot be loaded (a
    missing file, no network for a download) fails all its pending rows with that one error.
    """
    for group in groups_of(jobs):
        pending = skip_finished(group, out, report, tick, fingerprint)
        if not pending:
            continue
        try:
            G, _ = open_generator(pending[0].generator, device)
        except MicromotionError as exc:
            fail_all(pending, exc, report, tick)
            continue
        yield pending, G


@dataclass(frozen=True)
class Run:
    """One batch run as an engine sees it: the rows, where they go, and how to run them.

    Attributes:
        manifest: The parsed manifest.
        out: The output folder.
        report: Where each row's result is recorded (through ``tick``).
        tick: Records a result and reports progress.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        workers: Alignment processes (local) or actors (Ray); ``None``: the engine decides.
        threads: Torch threads per inverting process; ``None``: the engine decides.
        address: A Ray cluster (Ray only).
    """

    manifest: Manifest
    out: Path
    report: ReportWriter
    tick: Tick
    device: str
    workers: int | None
    threads: int | None
    address: str | None

    def record(self, result: RowResult) -> None:
        """Record one row's result."""
        self.tick(self.report, result)

    def groups(
        self, fingerprint: Fingerprints, device: str
    ) -> Iterator[tuple[list[Job], Generator]]:
        """:func:`runnable_groups` of this run's rows."""
        return runnable_groups(self.manifest.jobs, self.out, self.report, self.tick, fingerprint,
                               device)  # fmt: skip
