"""Manifests: a CSV or JSONL file whose rows are jobs, parsed into typed, named jobs.

A row names its ``job`` (``animate``, ``invert``, ``discover-video``, ``discover-text``) and
the job's settings under the names the single commands' library settings use (``frames``,
``strength``, ``inverter``, ``rank``, …). In a CSV an empty cell means "the default" and a
list is written with ``;`` (``micromotion = smile;age``, ``strength = 3;-2``); a JSONL row
uses JSON values. Relative paths are relative to the manifest's folder, so a manifest and its
photos move together.

Each row parses on its own: a row with a typo fails alone, with a one-line error that names
the row and the field, and the others run.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from micromotion.anchors.text import TextAnchorConfig
from micromotion.anchors.video import VideoAnchorConfig
from micromotion.core.numbers import FLOAT32_MAX
from micromotion.errors import MicromotionError, ParameterError
from micromotion.hub.resolve import looks_like_path
from micromotion.inversion import InversionConfig
from micromotion.pipelines.animate import ClipSettings, PhotoSettings
from micromotion.pipelines.discover import Decomposition
from micromotion.pipelines.photo import InverterSettings

#: The job kinds a row may name.
JOBS = ("animate", "invert", "discover-video", "discover-text")
#: What an animate row may write.
FORMATS = ("mp4", "gif", "png")
#: A row's own name: safe as a folder name on every platform.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
#: Rows at most (a manifest is read whole before any work).
MAX_ROWS = 1_000_000


class Row(typing.NamedTuple):
    """One line of a manifest, as written: its number (1-based, the header is not a row)."""

    number: int
    values: dict[str, Any]


@dataclass(frozen=True)
class Job:
    """A row parsed and checked: what to run, where its files go, and what it reads.

    Attributes:
        number: The row's number in the manifest (1-based).
        name: The row's output folder (``OUTDIR/NAME/``): its ``name`` field, or
            ``JOB-INPUT-HASH`` made from the row.
        kind: One of :data:`JOBS`.
        generator: The generator spec (a file path, made absolute, or a zoo name).
        inverter: The inverter spec (``auto``, ``projector``, an encoder), or ``None``.
        fields: The pipeline arguments, typed (``clip``: ClipSettings, …).
        canonical: The row as settings: what a finished row's record must match.
        inputs: Files the row reads (their hashes are part of what a finished row matches).
        photo: The photo to align, when there is one (workers align it ahead of time).
    """

    number: int
    name: str
    kind: str
    generator: str
    inverter: str | None
    fields: dict[str, Any]
    canonical: dict[str, Any]
    inputs: tuple[Path, ...] = ()
    photo: Path | None = None
    align: bool = False
    face: int | None = None

    @property
    def group(self) -> tuple[str, str]:
        """Rows that share a generator and an inverter run together, on networks loaded once."""
        return (self.generator, self.inverter or "")


@dataclass(frozen=True)
class BadRow:
    """A row that could not be parsed: its number, a name if it has one, and the error."""

    number: int
    name: str
    kind: str
    error: str


@dataclass
class Manifest:
    """A manifest read: the jobs to run and the rows that are wrong."""

    path: Path
    sha256: str
    default_generator: str = "ffhq"
    jobs: list[Job] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Rows in the manifest."""
        return len(self.jobs) + len(self.bad)


# --------------------------------------------------------------------------------------------
# Reading the file
# --------------------------------------------------------------------------------------------


def read_rows(path: Path) -> list[Row]:
    """The rows of a ``.csv`` or ``.jsonl`` manifest, as written.

    Raises:
        MicromotionError: Naming the file: missing, unreadable, not UTF-8, a broken CSV, or
            a JSONL line that is not a JSON object (with its line number).
    """
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson"):
        raise MicromotionError(f"{path}: a manifest is a .csv or .jsonl file, not {suffix!r}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise MicromotionError(f"{path}: no such manifest") from None
    except IsADirectoryError:
        raise MicromotionError(f"{path}: is a directory, not a manifest") from None
    except UnicodeDecodeError:
        raise MicromotionError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise MicromotionError(f"{path}: cannot read: {exc.strerror}") from None
    rows = _csv_rows(path, text) if suffix == ".csv" else _jsonl_rows(path, text)
    if not rows:
        raise MicromotionError(f"{path}: the manifest has no rows")
    if len(rows) > MAX_ROWS:
        raise MicromotionError(f"{path}: {len(rows)} rows; at most {MAX_ROWS} per manifest")
    return rows


def _csv_rows(path: Path, text: str) -> list[Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames or []
        if not header:
            return []
        names = [h.strip() for h in header]
        if "job" not in names:
            raise MicromotionError(f"{path}: the CSV header has no 'job' column")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise MicromotionError(f"{path}: the CSV header names {dupes[0]!r} twice")
        rows: list[Row] = []
        for raw in reader:
            if None in raw:  # more cells than the header has columns
                raise MicromotionError(
                    f"{path}: line {reader.line_num}: more cells than the header has columns"
                )
            values = {k.strip(): v.strip() for k, v in raw.items() if v is not None}
            if not any(values.values()):
                continue  # a blank line
            rows.append(Row(len(rows) + 1, {k: v for k, v in values.items() if v != ""}))
    except csv.Error as exc:
        raise MicromotionError(f"{path}: line {reader.line_num}: broken CSV ({exc})") from None
    return rows


def _jsonl_rows(path: Path, text: str) -> list[Row]:
    rows: list[Row] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line, parse_constant=_refuse_constant)
        except ValueError as exc:
            raise MicromotionError(f"{path}: line {line_number}: not JSON ({exc})") from None
        if not isinstance(value, dict):
            raise MicromotionError(f"{path}: line {line_number}: a row must be a JSON object")
        rows.append(Row(len(rows) + 1, value))
    return rows


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number a manifest may hold")


# --------------------------------------------------------------------------------------------
# Rows → jobs
# --------------------------------------------------------------------------------------------

# Where each job's settings go: the dataclass a field belongs to, in order of precedence, and
# the row fields the job takes directly (with their types).
_Settings = tuple[tuple[str, type], ...]
_SETTINGS: dict[str, _Settings] = {
    "animate": (("clip", ClipSettings), ("photo_settings", PhotoSettings)),
    "invert": (("config", InversionConfig), ("inverter", InverterSettings)),
    "discover-video": (
        ("config", VideoAnchorConfig),
        ("inverter", InverterSettings),
        ("decomposition", Decomposition),
    ),
    "discover-text": (("config", TextAnchorConfig), ("decomposition", Decomposition)),
}
_PATH = Path
_DIRECT: dict[str, dict[str, Any]] = {
    "animate": {
        "photo": _PATH,
        "latent": _PATH,
        "index": int | None,
        "seed": int | None,
        "micromotion": tuple[str, ...],
        "strength": tuple[float, ...],
        "truncation_psi": float,
        "format": Literal["mp4", "gif", "png"],
    },
    "invert": {"photo": _PATH, "align": bool, "face": int | None, "lpips": bool | None},
    "discover-video": {"video": _PATH, "align": bool, "lpips": bool | None},
    "discover-text": {
        "clip": str,
        "latent": _PATH,
        "index": int | None,
        "id_weights": _PATH,
    },
}
#: Fields no row may set: the batch decides them.
_RESERVED = {"name", "output", "outdir", "device", "progress", "batch_size"}
#: Fields of the settings classes that rows may not set (the batch names outputs itself).
_HIDDEN = {("decomposition", "name")}


def parse_manifest(path: str | os.PathLike[str], *, generator: str = "ffhq") -> Manifest:
    """Read a manifest and parse every row; a bad row is kept as a :class:`BadRow`.

    Args:
        path: The ``.csv`` or ``.jsonl`` file.
        generator: The generator of rows that name none.

    Raises:
        MicromotionError: For a manifest that cannot be read at all (see :func:`read_rows`).
    """
    path = Path(path)
    rows = read_rows(path)
    manifest = Manifest(path, hashlib.sha256(path.read_bytes()).hexdigest(), generator)
    seen: dict[str, int] = {}
    for row in rows:
        label = str(row.values.get("name") or "")
        kind = str(row.values.get("job") or "")
        try:
            job = parse_row(row, base=path.parent, generator=generator)
        except MicromotionError as exc:
            manifest.bad.append(BadRow(row.number, label, kind, _row_error(row, exc)))
            continue
        if job.name in seen:
            error = f"row {row.number}: its outputs {job.name!r} are row {seen[job.name]}'s"
            manifest.bad.append(BadRow(row.number, job.name, kind, error + " (same settings?)"))
            continue
        seen[job.name] = row.number
        manifest.jobs.append(job)
    return manifest


def _row_error(row: Row, exc: MicromotionError) -> str:
    text = exc.render({}) if isinstance(exc, ParameterError) else str(exc)
    return f"row {row.number}: {text}"


def parse_row(row: Row, *, base: Path, generator: str) -> Job:
    """Parse one row into a :class:`Job` (no file is opened; inputs are checked to exist).

    Raises:
        ParameterError: For an unknown job or field, or a value of the wrong type.
        MicromotionError: For a missing input file.
    """
    values = dict(row.values)
    kind = str(values.pop("job", "") or "")
    if kind not in JOBS:
        raise ParameterError("job", f"{kind!r}: choose one of {', '.join(JOBS)}")
    name = values.pop("name", None)
    generator_spec = _spec(values.pop("generator", None) or generator, base)
    for key in values:
        if key in _RESERVED:
            raise ParameterError(key, "is set by the batch, not by a row")
    settings = _SETTINGS[kind]
    direct = _DIRECT[kind]
    known = set(direct)
    for _, cls in settings:
        known |= {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ParameterError(unknown[0], f"is not a setting of {kind} rows")

    fields: dict[str, Any] = {}
    canonical: dict[str, Any] = {"job": kind, "generator": generator_spec}
    taken: set[str] = set()
    for key, hint in direct.items():
        if key in values:
            value = _parse(key, values[key], hint, base)
            fields[key] = value
            canonical[key] = str(value) if isinstance(value, Path) else value
            taken.add(key)
    for target, cls in settings:
        hints = typing.get_type_hints(cls)
        given = {}
        for f in dataclasses.fields(cls):
            if f.name in values and f.name not in taken and (target, f.name) not in _HIDDEN:
                given[f.name] = _parse(f.name, values[f.name], hints[f.name], base)
                taken.add(f.name)
        fields[target] = cls(**given)  # the library's checks: ParameterError names the field
        canonical[target] = _settings_dict(fields[target])
    hidden = sorted(set(values) - taken)
    if hidden:
        raise ParameterError(hidden[0], f"is set by the batch, not by {kind} rows")

    photo, inputs, align, face = _inputs(kind, fields)
    inverter = None  # a seed, a code or text needs no inverter
    if kind in ("invert", "discover-video") or (kind == "animate" and "photo" in fields):
        inverter = _spec(
            fields["photo_settings" if kind == "animate" else "inverter"].inverter, base
        )
    if kind == "discover-text" and "clip" in fields:
        # MODEL:WEIGHTS, either part a local file (a config, weights), relative to the manifest
        parts = [_spec(p, base) if looks_like_path(p) else p for p in fields["clip"].split(":", 1)]
        fields["clip"] = canonical["clip"] = ":".join(parts)
        inputs += tuple(Path(p) for p in parts if looks_like_path(p))
    if kind == "animate":
        _check_animate(fields)
        specs = [_spec(s, base) for s in fields["micromotion"]]
        fields["micromotion"] = tuple(specs)
        canonical["micromotion"] = specs
        inputs += tuple(Path(s) for s in specs if looks_like_path(s))
    if name is None:
        name = _default_name(kind, fields, canonical)
    elif not isinstance(name, str) or not _NAME.match(name):
        raise ParameterError(
            "name", f"{name!r}: use letters, digits, '.', '_' and '-' (at most 100)"
        )
    for path in inputs:
        if not path.is_file():
            raise MicromotionError(f"{path}: no such file")
    return Job(
        row.number, name, kind, generator_spec, inverter, fields, canonical, inputs, photo,
        align, face,
    )  # fmt: skip


def _inputs(
    kind: str, fields: Mapping[str, Any]
) -> tuple[Path | None, tuple[Path, ...], bool, Any]:
    files = tuple(fields[k] for k in ("photo", "latent", "video", "id_weights") if k in fields)
    if kind == "animate" and "photo" in fields:
        ps = fields["photo_settings"]
        return fields["photo"], files, ps.align, ps.face
    if kind == "invert":
        if "photo" not in fields:
            raise ParameterError("photo", "is required for an invert row")
        return fields["photo"], files, fields.get("align", True), fields.get("face")
    if kind == "discover-video" and "video" not in fields:
        raise ParameterError("video", "is required for a discover-video row")
    return None, files, False, None


def _check_animate(fields: Mapping[str, Any]) -> None:
    if not fields.get("micromotion"):
        raise ParameterError("micromotion", "is required for an animate row (e.g. smile)")
    starts = [k for k in ("photo", "latent", "seed") if fields.get(k) is not None]
    if len(starts) != 1:
        raise ParameterError.worded(
            "give exactly one of {photo}, {latent} or {seed}", "photo", "latent", "seed"
        )
    strengths = fields.get("strength")
    if strengths is not None and len(strengths) not in (1, len(fields["micromotion"])):
        raise ParameterError(
            "strength",
            f"{len(strengths)} values for {len(fields['micromotion'])} micromotions: "
            "give one for all or one each",
        )
    if "index" in fields and "latent" not in fields:
        raise ParameterError("index", "picks a row of latent; give latent too")


def _default_name(kind: str, fields: Mapping[str, Any], canonical: Mapping[str, Any]) -> str:
    source = next((fields[k] for k in ("photo", "latent", "video") if k in fields), None)
    if source is not None:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(source).stem).strip("._-") or "input"
    elif kind == "animate":
        stem = f"seed{fields['seed']}"
    else:
        stem = f"seed{canonical['config']['seed']}"
    digest = hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()[:8]
    return f"{kind}-{stem[:60]}-{digest}"


def _settings_dict(obj: Any) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def _spec(value: Any, base: Path) -> str:
    """A file spec made absolute against the manifest's folder; zoo names stay names."""
    text = str(value)
    if looks_like_path(text):
        path = Path(text).expanduser()
        return str(path if path.is_absolute() else (base / path).resolve())
    return text


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


def _parse(key: str, value: Any, hint: Any, base: Path) -> Any:
    """``value`` (a CSV string or a JSON value) as ``hint`` says, or a ParameterError."""
    try:
        return _convert(value, hint, base)
    except (TypeError, ValueError) as exc:
        raise ParameterError(key, f"{value!r}: {exc}") from None


def _convert(value: Any, hint: Any, base: Path) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(hint)
        if value is None and type(None) in members:
            return None
        errors = []
        for member in members:
            if member is type(None):
                continue
            try:
                return _convert(value, member, base)
            except (TypeError, ValueError) as exc:
                errors.append(str(exc))
        raise ValueError(" or ".join(errors))
    if origin is Literal:
        choices = typing.get_args(hint)
        if value in choices:
            return value
        raise ValueError(f"expected {' or '.join(map(str, choices))}")
    if origin is tuple:
        (inner, *_rest) = typing.get_args(hint)
        items = value.split(";") if isinstance(value, str) else value
        if isinstance(items, int | float) and not isinstance(items, bool):
            items = [items]  # one value where a list may go: a list of one
        if not isinstance(items, list) or not items:
            raise ValueError("expected a list (in a CSV: values separated by ';')")
        return tuple(_convert(v.strip() if isinstance(v, str) else v, inner, base) for v in items)
    if hint is _PATH:
        if not isinstance(value, str) or not value:
            raise ValueError("expected a file path")
        path = Path(value).expanduser()
        return path if path.is_absolute() else (base / path).resolve()
    return _scalar(value, hint)


def _scalar(value: Any, hint: Any) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "1"):
            return True
        if text in ("false", "no", "0"):
            return False
        raise ValueError("expected true or false")
    if hint is int:
        if isinstance(value, (bool, float)):
            raise ValueError("expected an integer")
        try:
            return int(str(value).strip(), 10)
        except ValueError:
            raise ValueError("expected an integer") from None
    if hint is float:
        if isinstance(value, bool):
            raise ValueError("expected a number")
        try:
            number = float(value)
        except ValueError:
            raise ValueError("expected a number") from None
        if not math.isfinite(number) or abs(number) > FLOAT32_MAX:
            raise ValueError("expected a finite number that fits float32")
        return number
    if hint is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValueError("expected text")
        return str(value)
    raise TypeError(f"cannot read a value of type {hint}")
