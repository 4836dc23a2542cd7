"""The one rule for "which file?": an existing file, else a zoo name — for every asset kind.

Generators, directions, LPIPS, IR-SE50 and CLIP weights, encoders: wherever a user names
weights, :func:`resolve` decides what the name means. A name that *looks* like a path (it has
a directory separator, starts with ``.`` or ``~``, or ends in a weights suffix) but names no
file is refused as a missing file — never quietly looked up in the zoo — with a hint when a
zoo entry of that name exists.
"""

from __future__ import annotations

import os
from pathlib import Path

from micromotion.errors import CheckpointError, MicromotionError
from micromotion.hub import entries
from micromotion.hub.cache import Check, fetch
from micromotion.hub.registry import Zoo

#: Suffixes that mark a spec as a file name (weights, micromotions, the paper's tensors).
FILE_SUFFIXES = (".pt", ".pth", ".pkl", ".safetensors", ".bin", ".npy", ".json", ".onnx")


def looks_like_path(spec: str | os.PathLike[str]) -> bool:
    """True if ``spec`` is clearly meant as a file: a separator, ``.``/``~`` or a suffix."""
    if isinstance(spec, os.PathLike):
        return True
    text = str(spec)
    return (
        os.sep in text
        or "/" in text
        or text.startswith((".", "~"))
        or text.lower().endswith(FILE_SUFFIXES)
    )


def resolve(
    spec: str | os.PathLike[str],
    *,
    kind: str | None = None,
    registry: Zoo | None = None,
    progress: bool = True,
    what: str = "a file",
    check: Check | None = None,
) -> Path:
    """Turn a user's spec into a file: an existing file as is, else a zoo name, fetched.

    Args:
        spec: A file path, or the name (or alias) of a zoo entry.
        kind: Require a zoo entry of this kind.
        registry: Registry to look in (default: :data:`micromotion.hub.entries.DEFAULT_ZOO`).
        progress: Show a progress bar if a download is needed.
        what: What the file should be, for messages (``"a checkpoint file"``).
        check: For a zoo download trusted on first use: accepts only a loadable file (see
            :func:`micromotion.hub.cache.fetch`).

    Returns:
        The path of an existing file or of a verified cached download.

    Raises:
        CheckpointError: A path-like spec that names no file, or a directory.
        MicromotionError: A name that is neither a file nor a zoo name (of ``kind``).
        DownloadError: If the zoo entry cannot be downloaded.
    """
    path = Path(spec)
    if path.is_file():
        return path
    reg = registry if registry is not None else entries.default_registry()
    text = str(spec)
    in_zoo = not isinstance(spec, os.PathLike) and text in reg
    if path.is_dir() and not in_zoo:
        # A folder named like a zoo entry (a dataset, the paper's pregen_latents/<name>)
        # must not hide that entry; any other folder is a mistake.
        raise CheckpointError(f"{spec}: is a directory, not {what}")
    if not in_zoo:
        if looks_like_path(spec):
            stem = path.name.split(".")[0]
            hint = f" (the zoo has an entry {stem!r}: name it without the path)" if (
                stem and stem in reg and (kind is None or reg.get(stem).kind == kind)
            ) else ""  # fmt: skip
            raise CheckpointError(f"{spec}: no such file{hint}")
        known = ", ".join(reg.names(kind=kind)) or "none"
        raise MicromotionError(
            f"{text}: no such file, and not a zoo name (known: {known}){reg._did_you_mean(text)}"
        )
    return fetch(text, registry=reg, kind=kind, progress=progress, check=check)
