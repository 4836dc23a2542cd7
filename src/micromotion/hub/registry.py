"""The registry's mechanism: :class:`ZooEntry` (one asset) and :class:`Zoo` (names → entries).

The entries themselves are data, in :mod:`micromotion.hub.entries`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from micromotion.errors import MicromotionError

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ZooEntry:
    """One downloadable asset.

    Attributes:
        name: Registry name (looked up case-insensitively).
        kind: ``generator``, ``direction`` or ``lpips`` (later: ``clip``, ``arcface``...).
        urls: Mirrors, tried in order; all must serve the same bytes.
        filename: File name in the cache.
        sha256: Published lowercase hex digest, or ``None`` when its publisher gives none
            (then the first download is trusted and recorded; see :func:`fetch`).
        format: ``nvidia-pkl``, ``rosinality-pt``, ``official-direction``...
        license: License of the asset.
        origin: Who made it and where the URL is documented.
        description: One line for ``zoo list``.
        resolution: Image resolution in pixels, or ``None`` where it does not apply.
        aliases: Other names that find this entry.
        size: Size in bytes where its publisher (or a verified copy) gives one; checked
            before the hash. ``None`` when not known — never guessed.
    """

    name: str
    kind: str
    urls: tuple[str, ...]
    filename: str
    sha256: str | None
    format: str
    license: str
    origin: str
    description: str
    resolution: int | None = None
    aliases: tuple[str, ...] = ()
    size: int | None = None

    def __post_init__(self) -> None:
        # Caught at import time rather than as a confusing mismatch after a long download.
        if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", self.name) or ".." in self.name:
            # The name becomes a cache directory: no separators, no '..'.
            raise ValueError(f"zoo entry {self.name!r}: name must be letters, digits, . _ -")
        if not self.urls:
            raise ValueError(f"zoo entry {self.name!r}: no URLs")
        if self.sha256 is not None and not _SHA256.fullmatch(self.sha256):
            raise ValueError(f"zoo entry {self.name!r}: sha256 must be 64 lowercase hex digits")
        if not self.filename or Path(self.filename).name != self.filename:
            raise ValueError(f"zoo entry {self.name!r}: filename must be a plain file name")


class Zoo:
    """A registry of :class:`ZooEntry`; names and aliases are unique, case-insensitively."""

    def __init__(self, entries: Iterable[ZooEntry] = ()) -> None:
        self._entries: dict[str, ZooEntry] = {}
        self._lookup: dict[str, str] = {}  # lowercase name or alias -> name
        for entry in entries:
            self.register(entry)

    def register(self, entry: ZooEntry) -> None:
        """Add ``entry``.

        Raises:
            ValueError: If its name or one of its aliases is already taken (in any case).
        """
        keys = [entry.name, *entry.aliases]
        for key in keys:
            if key.lower() in self._lookup:
                raise ValueError(f"zoo name {key!r} is already registered")
        self._entries[entry.name] = entry
        for key in keys:
            self._lookup[key.lower()] = entry.name

    def unregister(self, name: str) -> ZooEntry:
        """Remove an entry and its aliases, and return it (for tests and plugins)."""
        entry = self.get(name)
        del self._entries[entry.name]
        for key in [entry.name, *entry.aliases]:
            self._lookup.pop(key.lower(), None)
        return entry

    def get(self, name: str, *, kind: str | None = None) -> ZooEntry:
        """Return the entry called ``name`` (or an alias, in any case), optionally of a kind.

        Raises:
            MicromotionError: For an unknown name (suggesting close ones) or the wrong kind.
        """
        key = self._lookup.get(name.lower())
        if key is None:
            raise MicromotionError(
                f"{name!r} is not a zoo name{self._did_you_mean(name)} (see `micromotion zoo list`)"
            )
        entry = self._entries[key]
        if kind is not None and entry.kind != kind:
            raise MicromotionError(f"{name}: the zoo entry is a {entry.kind}, not a {kind}")
        return entry

    def list_entries(self, *, kind: str | None = None) -> list[ZooEntry]:
        """All entries (of ``kind``, if given), in registration order."""
        return [e for e in self._entries.values() if kind is None or e.kind == kind]

    def names(self, *, kind: str | None = None) -> list[str]:
        """The names of :meth:`list_entries`."""
        return [e.name for e in self.list_entries(kind=kind)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lookup

    def __len__(self) -> int:
        return len(self._entries)

    def _did_you_mean(self, name: str) -> str:
        close = difflib.get_close_matches(name.lower(), list(self._lookup), n=3, cutoff=0.6)
        names = dict.fromkeys(self._lookup[c] for c in close)  # aliases -> names, deduplicated
        return f"; did you mean {', '.join(names)}?" if names else ""
