"""What makes a downloaded file a loadable asset of its kind, for the cache's trust on first use.

The cache (:func:`micromotion.hub.fetch`) pins the hash of a file without a published sha256
the first time it sees it. :func:`check_asset` is what it asks first, so that only a file that
really loads as a generator, a direction or LPIPS weights is trusted — not an HTML error page
saved under a weight's name or a truncated download.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from micromotion import hub
from micromotion.hub import ZooEntry
from micromotion.weights.state import load_torch_file


def check_asset(kind: str, path: Path) -> Any:
    """Load ``path`` as an asset of ``kind``, raising a one-line error if it is not one.

    Args:
        kind: The zoo entry's kind (``generator``, ``direction``, ``lpips``...).
        path: The file.

    Returns:
        What was loaded (a generator, a micromotion, a state dict), for callers that use it.

    Raises:
        MicromotionError: If the file does not load as that kind of asset.
    """
    if kind == "generator":
        from micromotion.weights.generator import read_generator_file

        return read_generator_file(path)
    if kind == "encoder":
        from micromotion.weights.encoders import load_encoder

        return load_encoder(path)
    if kind == "direction":
        from micromotion.weights.micromotion import import_official

        return import_official(path)
    from micromotion.weights.generator import detect_format

    if detect_format(path) == "safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from micromotion.errors import CheckpointError

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    return load_torch_file(path, what=f"{kind} weights")


def fetch_checked(entry: str | ZooEntry, **options: Any) -> Path:
    """:func:`micromotion.hub.fetch` with :func:`check_asset` as its first-use check."""
    registry = options.get("registry")
    if isinstance(entry, ZooEntry):
        found = entry
    else:
        found = registry.get(entry) if registry is not None else hub.get(entry)
    options.pop("registry", None)
    return hub.fetch(found, check=lambda path: check_asset(found.kind, path), **options)


def fetch_all(specs: Sequence[object], *, progress: bool = True) -> None:
    """Make sure every zoo asset among ``specs`` is in the cache, naming all that are missing.

    Files, loaded objects, the directions shipped in the package and names the zoo does not
    know are passed over (they are checked where they are used). Every other name is fetched
    (and checked on first use); when some cannot be, one error lists each of them with its
    URL and the exact path to save a hand-downloaded copy at, instead of stopping at the first.

    Raises:
        DownloadError: Listing every asset that could not be fetched.
    """
    from micromotion.errors import DownloadError, MicromotionError
    from micromotion.weights.micromotion import packaged_direction

    failures: list[str] = []
    seen: set[str] = set()
    for spec in specs:
        if not isinstance(spec, str) or hub.looks_like_path(spec) or Path(spec).exists():
            continue
        try:
            entry = hub.get(spec)
        except MicromotionError:
            continue  # not a zoo name: its own error comes where it is used
        if entry.name in seen or packaged_direction(entry.name) is not None:
            continue
        if hub.is_cached(entry):
            continue  # verified (hashed) where it is loaded; no need to hash it twice
        seen.add(entry.name)
        try:
            fetch_checked(entry, progress=progress)
        except DownloadError as exc:
            failures.append(str(exc))
    if len(failures) == 1:
        raise DownloadError(failures[0])
    if failures:
        raise DownloadError(
            f"{len(failures)} files are missing: "
            + "; ".join(f"({i}) {text}" for i, text in enumerate(failures, start=1))
        )
