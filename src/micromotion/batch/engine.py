"""Run a manifest: check every row, skip finished ones, run the rest locally or on Ray.

:func:`run_batch` is the library call behind ``micromotion batch``. The local engine runs rows
in one process, grouped by generator and inverter so each network is loaded once per group
(:func:`~micromotion.pipelines._load.reuse_networks`), and aligns the faces of a chunk of rows
in worker processes before the chunk is inverted and rendered, so the two phases never compete
for the cores. The Ray engine is in :mod:`micromotion.batch.ray_engine`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

from micromotion.batch import _align
from micromotion.batch._shared import (
    Fingerprints,
    Run,
    cpu_count,
    ticker,
)
from micromotion.batch.manifest import Job, Manifest, parse_manifest
from micromotion.batch.rows import REPORT, ReportWriter, RowResult, run_row
from micromotion.core.outputs import check_writes, lock_dir
from micromotion.core.progress import Progress
from micromotion.core.threads import torch_threads
from micromotion.errors import MicromotionError, ParameterError
from micromotion.pipelines._load import NetworkCache, reuse_networks
from micromotion.pipelines.photo import FACE_CROP, crop_key

Engine = Literal["local", "ray"]
#: Rows whose faces are aligned together, before they are inverted and rendered.
ALIGN_CHUNK = 8


@dataclass(frozen=True)
class BatchResult:
    """What a batch did.

    Attributes:
        outdir: The output folder.
        report: ``OUTDIR/batch.jsonl``.
        results: One result per manifest row, in row order.
    """

    outdir: Path
    report: Path
    results: list[RowResult]

    def count(self, status: str) -> int:
        """Rows with this status (``done``, ``skipped``, ``failed``)."""
        return sum(r.status == status for r in self.results)

    @property
    def ok(self) -> bool:
        """True when no row failed."""
        return self.count("failed") == 0


def run_batch(
    manifest: str | os.PathLike[str],
    *,
    outdir: str | os.PathLike[str],
    engine: Engine = "local",
    generator: str = "ffhq",
    device: str = "auto",
    workers: int | None = None,
    threads: int | None = None,
    address: str | None = None,
    progress: Progress | None = None,
) -> BatchResult:
    """Run every row of ``manifest`` into ``outdir``, resumably.

    Finished rows (their record matches the row, the inputs, the outputs and the generator)
    are skipped; a row that fails is recorded and the others go on.

    Args:
        manifest: A ``.csv`` or ``.jsonl`` file of rows (see :mod:`micromotion.batch.manifest`).
        outdir: The output folder: ``OUTDIR/NAME/`` per row and ``OUTDIR/batch.jsonl``.
        engine: ``local`` (one process) or ``ray``.
        generator: The generator of rows that name none.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        workers: Local: alignment processes (default: the cores). Ray: actors that invert and
            render (default: one per GPU, else the cores less one, left for alignment).
        threads: Torch threads per process that inverts and renders (default: the cores, or
            the cores shared out between Ray's actors). Results are bit-identical between
            engines for the same thread count.
        address: Ray: a running cluster's address (default: start Ray locally).
        progress: ``progress("rows", done, total, note)`` as each row ends.

    Returns:
        The per-row results, also written to ``OUTDIR/batch.jsonl``.

    Raises:
        MicromotionError: For a manifest that cannot be read, or an unusable output folder.
    """
    if engine not in ("local", "ray"):
        raise ParameterError("engine", f"{engine!r}: choose local or ray")
    for name, value in (("workers", workers), ("threads", threads)):
        if value is not None and value < 1:
            raise ParameterError(name, f"{value}: must be at least 1")
    if address is not None and engine != "ray":
        raise ParameterError.worded("{address} needs {engine} ray", "address", "engine")
    if engine == "ray":
        from micromotion.batch.ray_engine import require_ray

        require_ray()  # before anything is read or written
    parsed = parse_manifest(manifest, generator=generator)
    out = _check_outdir(Path(outdir), parsed)
    run = _run_ray if engine == "ray" else _run_local
    with lock_dir(out):
        report = ReportWriter(out)
        tick = ticker(progress, parsed.total)
        for bad in parsed.bad:
            tick(report, RowResult(bad.number, bad.name, bad.kind, "failed", bad.error))
        run(Run(parsed, out, report, tick, device, workers, threads, address))
        results = report.close()
    return BatchResult(out, report.path, results)


def _check_outdir(out: Path, manifest: Manifest) -> Path:
    """Refuse, before anything is written, an output folder that would touch an input."""
    if out.exists() and not out.is_dir():
        raise MicromotionError(f"{out}: exists and is not a folder")
    inputs = [manifest.path, *(path for job in manifest.jobs for path in job.inputs)]
    # The report must not replace the manifest (`batch out/batch.jsonl -o out`) or an input,
    # and its folder must be writable.
    check_writes({"report": out / REPORT}, reads=inputs)
    resolved = out.resolve()
    for job in manifest.jobs:  # a row's folder must not hold one of the batch's inputs
        folder = resolved / job.name
        for path in (manifest.path, *job.inputs):
            if folder in Path(path).resolve().parents:
                raise MicromotionError(
                    f"{path}: lies in row {job.number}'s output folder {folder}, which the "
                    "batch empties before it runs the row"
                )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MicromotionError(f"{out}: cannot create the output folder: {exc.strerror}") from None
    return out


def _run_local(run: Run) -> None:
    cores = cpu_count()
    cache = NetworkCache()
    fingerprint = Fingerprints(run.device)
    threads, workers = run.threads or cores, run.workers or cores
    with reuse_networks(cache), torch_threads(threads), _aligner(workers) as pool:
        for pending, G in run.groups(fingerprint, run.device):
            for start in range(0, len(pending), ALIGN_CHUNK):
                chunk = pending[start : start + ALIGN_CHUNK]
                _prealign(chunk, G.img_resolution, cache, pool)
                for job in chunk:
                    run.record(run_row(job, run.out, device=run.device, fingerprint=fingerprint,
                                       manifest=run.manifest.sha256))  # fmt: skip
            cache.clear()  # the next group's networks replace this group's


class _Pool:
    """Alignment worker processes, started on first use."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def submit(self, *args: Any) -> Future[Any]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=get_context("spawn"), initializer=_align.init_worker
            )
        return self._pool.submit(_align.align_photo, *args)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)


@contextmanager
def _aligner(workers: int) -> Iterator[_Pool]:
    pool = _Pool(workers)
    try:
        yield pool
    finally:
        pool.close()


def _prealign(chunk: list[Job], resolution: int, cache: NetworkCache, pool: _Pool) -> None:
    """Align the chunk's photos (in workers when there are several) and hand the crops on.

    If the workers cannot run (a broken pool, a ``__main__`` that a spawned process cannot
    import), the pipelines align the photos themselves, one after another, as they would
    alone: slower, never wrong.
    """
    photos = [job for job in chunk if job.photo is not None]
    if len(photos) < 2 or pool.workers < 2:
        return  # one photo: the pipeline aligns it itself, with no process to start
    try:
        futures = {
            job.number: pool.submit(str(job.photo), resolution, job.align, job.face)
            for job in photos
        }
        crops = {number: future.result() for number, future in futures.items()}
    except (BrokenProcessPool, OSError, RuntimeError):
        pool.workers = 0
        return
    for job in photos:
        key = crop_key(resolution, job.align, job.face)
        cache.put(FACE_CROP, job.photo, key, crops[job.number])


def _run_ray(run: Run) -> None:
    from micromotion.batch.ray_engine import run_on_ray

    run_on_ray(run)
