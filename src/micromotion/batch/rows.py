"""One row of a batch: run its pipeline into its own folder, and tell a finished row from the rest.

Each row writes into ``OUTDIR/NAME/`` (``NAME`` from the row, see
:mod:`micromotion.batch.manifest`) exactly what the single command writes, with the same
records. The last file written is ``batch-row.json``: the row's settings, the sha256 of every
input and output, and the generator's fingerprint. A row counts as finished only when that file
is there and everything it lists still matches; anything else in the folder is what an
interrupted run left, and the row's folder is emptied and the row run again. A folder is only
ever emptied when it carries the batch's own mark (``.micromotion-batch``), so a folder of the
user's that happens to share a row's name is refused, never wiped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from micromotion.batch.manifest import Job
from micromotion.core.io import sha256_file, write_json_atomic
from micromotion.core.progress import Progress
from micromotion.core.provenance import provenance
from micromotion.errors import MicromotionError, ParameterError

#: The file that says a row finished (written last).
MARKER = "batch-row.json"
#: The file that says a folder is a batch row's (so it may be emptied).
OWNER = ".micromotion-batch"
#: The report of a run, one JSON line per row.
REPORT = "batch.jsonl"

Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class RowResult:
    """What happened to one row.

    Attributes:
        number: The row's number in the manifest.
        name: Its output folder's name.
        job: Its job kind.
        status: ``done`` (ran now), ``skipped`` (finished before, verified) or ``failed``.
        error: The one-line error of a failed row.
        seconds: Wall time spent on the row.
        files: The row's output files, relative to the batch's output folder.
    """

    number: int
    name: str
    job: str
    status: Status
    error: str | None = None
    seconds: float = 0.0
    files: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The report line."""
        out = dataclasses.asdict(self)
        out["files"] = list(self.files)
        out["seconds"] = round(self.seconds, 3)
        return out


def _normal(value: Any) -> Any:
    """JSON's view of a value (tuples become lists): how a row is compared with its record."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def generator_identity(spec: str) -> dict[str, Any]:
    """How a finished row knows its generator without loading it.

    A zoo name (its entries are hash-checked), or a file's path, size and modification time.
    """
    path = Path(spec)
    if path.is_file():
        stat = path.stat()
        return {"file": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return {"name": spec}


def finished_files(
    job: Job, outdir: Path, fingerprint_of: Callable[[str], str] | None = None
) -> tuple[str, ...] | None:
    """The output files of ``job``'s finished, verified result of exactly this row, else ``None``.

    Args:
        job: The row.
        outdir: The batch's output folder.
        fingerprint_of: Loads a generator and returns its fingerprint; asked only when the
            generator file changed since the row ran (else its path, size and time vouch).

    Returns:
        The files its ``batch-row.json`` lists (relative to ``outdir``), when that record
        matches the row, its inputs, every output and the generator; ``None`` otherwise.
    """
    folder = outdir / job.name
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("row") != _normal(job.canonical):
        return None
    files = marker.get("files")
    if not isinstance(files, dict) or not files:
        return None
    try:
        inputs = {str(p): sha256_file(p) for p in job.inputs}
        if marker.get("inputs") != inputs:
            return None
        for rel, digest in files.items():
            path = outdir / rel
            if path.parent != folder or not path.is_file() or sha256_file(path) != digest:
                return None
    except OSError:
        return None
    if marker.get("generator_identity") != generator_identity(job.generator):
        if fingerprint_of is None:
            return None
        try:
            if fingerprint_of(job.generator) != marker.get("generator_fingerprint"):
                return None
        except MicromotionError:
            return None
    return tuple(sorted(files))


def claim_folder(folder: Path) -> None:
    """Make ``folder`` the row's, empty: create it, or empty one the batch made before.

    Raises:
        MicromotionError: For a folder with files of someone else's, or a file in its place.
    """
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise MicromotionError(f"{folder}: exists and is not a folder; move it away")
    if folder.is_dir():
        entries = list(folder.iterdir())
        if entries and not (folder / OWNER).is_file():
            raise MicromotionError(
                f"{folder}: holds files that micromotion batch did not write; move it away "
                "or give the row another name"
            )
        for entry in entries:
            if entry.name == OWNER:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    else:
        folder.mkdir(parents=True)
    (folder / OWNER).touch()


def run_row(
    job: Job,
    outdir: Path,
    *,
    device: str,
    fingerprint: Callable[[str], str],
    manifest: str,
    progress: Progress | None = None,
) -> RowResult:
    """Run one row's pipeline into ``OUTDIR/NAME/``; a user error becomes a failed row.

    Args:
        job: The row.
        outdir: The batch's output folder.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        fingerprint: The fingerprint of a generator spec (loaded once by the engine).
        manifest: The manifest's sha256, for the record.
        progress: The pipeline's progress callback.

    Returns:
        ``done`` with the files written, or ``failed`` with the one-line error.
    """
    start = time.perf_counter()
    folder = outdir / job.name
    try:
        claim_folder(folder)
        _PIPELINES[job.kind](job, folder, device, progress)
        files = sorted(p for p in folder.iterdir() if p.name not in (OWNER, MARKER))
        record = provenance(
            command="batch",
            manifest_sha256=manifest,
            row_number=job.number,
            row=_normal(job.canonical),
            inputs={str(p): sha256_file(p) for p in job.inputs},
            files={f"{job.name}/{p.name}": sha256_file(p) for p in files},
            generator_identity=generator_identity(job.generator),
            generator_fingerprint=fingerprint(job.generator),
        )
        write_json_atomic(folder / MARKER, record)  # last: it says the row is finished
    except Exception as exc:  # one row's failure, whatever it is, must not stop the others
        if isinstance(exc, ParameterError):
            text = exc.render({})
        elif isinstance(exc, MicromotionError):
            text = str(exc)
        elif isinstance(exc, OSError):
            text = f"{exc.filename or folder}: {exc.strerror or exc}"
        else:  # a bug of ours: say what it was, so it can be reported
            text = f"internal error ({type(exc).__name__}: {exc})"
        with contextlib.suppress(OSError):
            (folder / MARKER).unlink(missing_ok=True)
            if [p.name for p in folder.iterdir()] == [OWNER]:  # nothing of the row is left
                (folder / OWNER).unlink()
                folder.rmdir()
        return RowResult(job.number, job.name, job.kind, "failed", f"row {job.number}: {text}",
                         time.perf_counter() - start)  # fmt: skip
    return RowResult(
        job.number, job.name, job.kind, "done", None, time.perf_counter() - start,
        tuple(f"{job.name}/{p.name}" for p in files),
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# The pipelines, one per job kind: the same calls the single commands make
# --------------------------------------------------------------------------------------------


def _passed(job: Job, device: str, progress: Progress | None, *names: str) -> dict[str, Any]:
    """The pipeline's keywords: the generator, device and progress, and the row's ``names``.

    A setting the row leaves out is not passed: the pipeline's own default applies.
    """
    given = {name: job.fields[name] for name in names if name in job.fields}
    return {"generator": job.generator, "device": device, "progress": progress, **given}


def _animate(job: Job, folder: Path, device: str, progress: Progress | None) -> None:
    from micromotion.pipelines.animate import animate

    f = job.fields
    animate(
        list(f["micromotion"]),
        output=folder / f"{job.name}.{f.get('format', 'mp4')}",
        strengths=f.get("strength"),
        image=f.get("photo"),
        photo=f["photo_settings"],
        **_passed(job, device, progress, "latent", "index", "seed", "truncation_psi", "clip"),
    )


def _invert(job: Job, folder: Path, device: str, progress: Progress | None) -> None:
    from micromotion.pipelines.invert import invert_photos

    settings = ("config", "align", "face", "lpips", "inverter")
    invert_photos([job.fields["photo"]], outdir=folder, **_passed(job, device, progress, *settings))


def _discover_video(job: Job, folder: Path, device: str, progress: Progress | None) -> None:
    from micromotion.pipelines.discover import discover_video

    settings = ("config", "align", "lpips", "inverter", "decomposition")
    discover_video(
        job.fields["video"],
        output=folder / f"{job.name}.safetensors",
        **_passed(job, device, progress, *settings),
    )


def _discover_text(job: Job, folder: Path, device: str, progress: Progress | None) -> None:
    from micromotion.pipelines.discover import discover_text

    settings = ("config", "clip", "latent", "index", "id_weights", "decomposition")
    discover_text(
        output=folder / f"{job.name}.safetensors", **_passed(job, device, progress, *settings)
    )


_PIPELINES: dict[str, Callable[[Job, Path, str, Progress | None], None]] = {
    "animate": _animate,
    "invert": _invert,
    "discover-video": _discover_video,
    "discover-text": _discover_text,
}


class ReportWriter:
    """``OUTDIR/batch.jsonl``: a line per row as it ends, then the whole report in row order.

    Each line is appended with one write and flushed, so a run that is killed leaves a
    readable log of the rows it finished; the next run starts a new report.
    """

    def __init__(self, outdir: Path) -> None:
        self.path = outdir / REPORT
        self.results: list[RowResult] = []
        write_json_lines(self.path, [])

    def add(self, result: RowResult) -> None:
        """Record one row's result now."""
        self.results.append(result)
        line = (json.dumps(result.to_json(), sort_keys=True) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def close(self) -> list[RowResult]:
        """Rewrite the report in row order; returns the results in row order."""
        ordered = sorted(self.results, key=lambda r: r.number)
        write_json_lines(self.path, [r.to_json() for r in ordered])
        return ordered


def write_json_lines(path: Path, lines: list[dict[str, Any]]) -> None:
    """Write JSON lines atomically."""
    from micromotion.core.io import write_bytes_atomic

    text = "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines)
    write_bytes_atomic(path, text.encode())


__all__ = [
    "MARKER",
    "OWNER",
    "REPORT",
    "ReportWriter",
    "RowResult",
    "claim_folder",
    "finished_files",
    "generator_identity",
    "run_row",
]
