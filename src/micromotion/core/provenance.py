"""The one provenance stamp: every file micromotion writes records what made it."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from micromotion._version import __version__


def provenance(**fields: Any) -> dict[str, Any]:
    """Return a provenance record: the given fields plus micromotion's version and a UTC time.

    The time is now, or ``SOURCE_DATE_EPOCH`` (seconds since 1970, the reproducible-builds
    convention) when that is set: then the same inputs give byte-identical files.
    """
    return {
        "micromotion_version": __version__,
        "created": created().isoformat(timespec="seconds"),
        **fields,
    }


def created() -> datetime:
    """The time to stamp on a file: ``SOURCE_DATE_EPOCH`` if set (and valid), else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), UTC)
    return datetime.now(UTC)
