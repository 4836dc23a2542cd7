"""The download cache: where files live, verified fetches, trust-on-first-use records.

:func:`fetch` returns a verified file from the cache, downloading it first if needed:

* downloads stream into a temporary file beside the destination with a progress bar, are
  checked for truncation and against the sha256, and only then renamed into place
  (see :func:`micromotion.hub.download.download`);
* mirrors are tried in order;
* cache hits are re-verified every time, so a damaged file is noticed and fetched again;
* entries without a published sha256 are *trusted on first use*: the hash of the first
  download is recorded in a JSON sidecar next to the file (``<file>.json``, with the URL,
  time and micromotion version) and later cache hits and re-downloads must match it;
* without network access, the one-line error names the URL and the exact path to save the
  file at, so it can be fetched by hand.

The cache root is ``$MICROMOTION_HOME`` or the platform's user cache directory; files live at
``<root>/zoo/<name>/<filename>``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

from micromotion.core.io import sha256_file, write_json_atomic
from micromotion.core.provenance import provenance
from micromotion.errors import CheckpointError, DownloadError, MicromotionError
from micromotion.hub import entries
from micromotion.hub.download import DEFAULT_TIMEOUT, DownloadFailure, download
from micromotion.hub.registry import _SHA256, Zoo, ZooEntry

#: Checks that a file is a loadable asset; raises MicromotionError if not.
Check: TypeAlias = Callable[[Path], Any]


def register(entry: ZooEntry) -> None:
    """Add ``entry`` to the default registry (see :meth:`Zoo.register`)."""
    entries.default_registry().register(entry)


def get(name: str, *, kind: str | None = None) -> ZooEntry:
    """Look ``name`` up in the default registry (see :meth:`Zoo.get`)."""
    return entries.default_registry().get(name, kind=kind)


def list_entries(*, kind: str | None = None) -> list[ZooEntry]:
    """The default registry's entries (of ``kind``, if given), in registration order."""
    return entries.default_registry().list_entries(kind=kind)


# ---------------------------------------------------------------------------------------------
# Cache.


def home() -> Path:
    """The cache root: ``$MICROMOTION_HOME`` or the platform's user cache directory."""
    env = os.environ.get("MICROMOTION_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("micromotion"))


def cache_path(entry: ZooEntry) -> Path:
    """Where ``entry``'s file lives in the cache (whether or not it is there yet)."""
    return home() / "zoo" / entry.name / entry.filename


def is_cached(entry: ZooEntry) -> bool:
    """True if the entry's file is in the cache (not verified: :func:`fetch` does that)."""
    return cache_path(entry).is_file()


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _expected_sha256(entry: ZooEntry, path: Path) -> str | None:
    """The published hash, else the one recorded on first use, else None."""
    if entry.sha256 is not None:
        return entry.sha256
    record = _record_path(path)
    if not record.is_file():
        return None
    try:
        digest = str(json.loads(record.read_text())["sha256"]).lower()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # Ignoring it would silently turn verification off.
        raise MicromotionError(
            f"{record}: unreadable trust-on-first-use record ({exc}); delete it to trust "
            "the cached file again"
        ) from None
    if not _SHA256.fullmatch(digest):
        raise MicromotionError(f"{record}: the recorded sha256 is not a hex digest; delete it")
    return digest


def _write_record(path: Path, entry: ZooEntry, digest: str, *, url: str) -> None:
    write_json_atomic(
        _record_path(path),
        provenance(name=entry.name, sha256=digest, url=url, trust="first use"),
    )


def fetch(
    name: str | ZooEntry,
    *,
    registry: Zoo | None = None,
    kind: str | None = None,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    check: Check | None = None,
) -> Path:
    """Return the verified cached file of a zoo entry, downloading it first if needed.

    A cached file is hashed on every call and compared with the entry's sha256. For an entry
    without a published sha256 the first download is trusted: its hash is recorded in
    ``<file>.json`` beside it (with URL, time and version), and from then on cache hits and
    re-downloads must match that record (delete it to trust a new file). A file put in the
    cache by hand is trusted and recorded the same way. A cached file that fails the check is
    moved aside (``<file>.corrupt``) and downloaded again; the copy aside is deleted once the
    new download is verified. Every rejected file keeps its own copy aside
    (``.corrupt``, ``.corrupt.1``, ...).

    Trust on first use pins only a file that ``check`` accepts: a garbage file (an HTML error
    page saved under the weight's name, a truncated download) is moved aside and refused
    instead of becoming the trusted hash.

    Args:
        name: Entry name or alias (any case), or the entry itself.
        registry: Registry to look in (default: :data:`DEFAULT_ZOO`).
        kind: Require this kind of entry (``generator``, ``direction``...).
        progress: Show a progress bar on stderr while downloading.
        timeout: Seconds to wait for a server at each step.
        check: Called with the file before its hash is trusted on first use; it raises
            :class:`~micromotion.errors.MicromotionError` for a file that is not a loadable
            asset of the entry's kind (see :func:`micromotion.weights.assets.check_asset`).

    Returns:
        The path of the verified file.

    Raises:
        DownloadError: If no mirror delivers a verified file; the one-line message names the
            URL and the exact path to save a hand-downloaded copy at.
        MicromotionError: For an unknown name or the wrong kind.
    """
    if isinstance(name, ZooEntry):
        entry = name
    else:
        entry = (registry if registry is not None else entries.default_registry()).get(
            name, kind=kind
        )
    path = cache_path(entry)
    expected = _expected_sha256(entry, path)
    if not path.is_file():
        return _download_entry(
            entry, path, expected, progress=progress, timeout=timeout, check=check
        )
    actual = sha256_file(path)
    if expected is None:
        _trust(path, entry, actual, "found in the cache (placed there by hand)", check)
        return path
    if actual == expected:
        return path
    # Damaged, or replaced by another file: keep it aside (it may be the user's) until a
    # verified copy is in place.
    aside = _move_aside(path)
    try:
        _download_entry(entry, path, expected, progress=progress, timeout=timeout, check=check)
    except DownloadError as exc:
        raise DownloadError(
            f"{path.name} in the cache failed its sha256 check (moved aside to {aside.name}), "
            f"and {exc}"
        ) from None
    with contextlib.suppress(OSError):
        aside.unlink()
    return path


def _move_aside(path: Path) -> Path:
    """Rename a rejected file to a free ``<name>.corrupt[.N]``: no earlier copy is lost."""
    aside = path.with_name(path.name + ".corrupt")
    n = 0
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt.{n}")
    os.replace(path, aside)
    return aside


def _trust(path: Path, entry: ZooEntry, digest: str, url: str, check: Check | None) -> None:
    """Record ``digest`` as trusted on first use, but only for a file ``check`` accepts."""
    if check is not None:
        try:
            check(path)
        except MicromotionError as exc:
            aside = _move_aside(path)
            raise CheckpointError(
                f"{path.name} in the cache is not a usable {entry.kind} file, so it was not "
                f"trusted; moved aside to {aside.name} ({exc})"
            ) from None
    _write_record(path, entry, digest, url=url)


def _download_entry(
    entry: ZooEntry,
    path: Path,
    expected: str | None,
    *,
    progress: bool,
    timeout: float,
    check: Check | None = None,
) -> Path:
    failures: list[DownloadFailure] = []
    for url in entry.urls:
        try:
            digest = download(
                url, path, sha256=expected, size=entry.size, progress=progress, timeout=timeout
            )
        except DownloadFailure as exc:
            failures.append(exc)
            continue
        if entry.sha256 is None and expected is None:
            _trust(path, entry, digest, url, check)
        return path
    tried = ", ".join(f"{f.url} ({f.reason})" for f in failures)
    hint = ""
    if entry.sha256 is None and expected is not None:
        hint = (
            f" (its sha256 was recorded on first use in {_record_path(path).name}; delete that "
            "file to trust a new download)"
        )
    raise DownloadError(
        f"could not download {entry.name} from {tried}. "
        f"Download it yourself and save it as {path}{hint}"
    )
