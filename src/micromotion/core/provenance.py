"""The one provenance stamp: every file micromotion writes records what made it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from micromotion._version import __version__


def provenance(**fields: Any) -> dict[str, Any]:
    """Return a provenance record: the given fields plus micromotion's version and a UTC time."""
    return {
        "micromotion_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **fields,
    }
