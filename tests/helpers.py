"""Shared test helpers (imported as ``helpers``; ``tests/`` is on pytest's pythonpath)."""

from __future__ import annotations

from pathlib import Path

from micromotion.testing import randomise, tiny_config, tiny_generator

__all__ = ["DATA", "REFERENCE", "SHARED", "randomise", "tiny_config", "tiny_generator", "zoo_entry"]

SHARED = Path(__file__).resolve().parents[2] / "shared"
REFERENCE = SHARED / "reference"
#: Stored reference outputs (parity regressions, FFHQ recipe crops).
DATA = Path(__file__).resolve().parent / "data"


def zoo_entry(
    urls, *, sha256=None, name="thing", kind="generator", aliases=(), filename="thing.bin"
):
    """A test zoo entry for ``urls``."""
    from micromotion.hub import ZooEntry

    return ZooEntry(
        name=name,
        kind=kind,
        urls=tuple(urls),
        filename=filename,
        sha256=sha256,
        format="raw",
        license="test",
        origin="test",
        description="test asset",
        aliases=aliases,
    )
