"""Small file helpers: atomic writes, hashing, existence checks, the one ``.npy`` reader."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeAlias

from micromotion.core.numbers import FLOAT32_MAX
from micromotion.errors import MicromotionError

#: A file name: text or any path-like object.
StrPath: TypeAlias = str | os.PathLike[str]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    Readers never see a half-written file: on any exception the temporary file is removed
    and ``path`` is left as it was.

    Args:
        path: The final destination.

    Yields:
        A path in the same directory (so the final rename is atomic) to write to.

    Raises:
        MicromotionError: If the destination directory cannot be written.
    """
    final = Path(path)
    parent = final.parent if str(final.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=parent)
    except OSError as exc:
        raise MicromotionError(f"{final}: cannot write here ({exc.strerror or exc})") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600 (and some writers replace the file): give the final file the
        # permissions a plain open() would, just before it appears.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_bytes_atomic(
        path, (json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n").encode()
    )


def sha256_file(path: str | os.PathLike[str], *, chunk_size: int = 1 << 20) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def require_file(
    path: str | os.PathLike[str], *, what: str, error: type[MicromotionError] = MicromotionError
) -> Path:
    """Return ``path`` if it is an existing regular file, else raise a one-line ``error``.

    Args:
        path: The file the user named.
        what: What it should have been, for the message (``"a checkpoint file"``).
        error: The exception type to raise.
    """
    p = Path(path)
    if p.is_dir():
        raise error(f"{path}: is a directory, not {what}")
    if not p.is_file():
        raise error(f"{path}: no such file")
    return p


def load_float_npy(path: str | os.PathLike[str], *, what: str = "values") -> Any:
    """Load a floating-point ``.npy`` array without ever unpickling (``allow_pickle=False``).

    Args:
        path: The file.
        what: What the array holds, for the error message (e.g. ``"codes"``).

    Returns:
        The NumPy array.

    Raises:
        MicromotionError: Missing file, not a ``.npy`` array (object arrays included), or
            not floating point.
    """
    import numpy as np

    p = require_file(path, what="a .npy file")
    try:
        with open(p, "rb") as fh:
            magic = fh.read(6)
    except OSError as exc:
        raise MicromotionError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if magic.startswith(b"PK"):
        raise MicromotionError(f"{path}: is an .npz archive, not a .npy array")
    if magic != b"\x93NUMPY":
        raise MicromotionError(f"{path}: not a .npy array")
    try:
        # The header alone says whether the array holds objects (pickles, never loaded).
        with open(p, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            dtype = np.dtype(read_header(fh)[2])  # (shape, fortran_order, dtype)
    except (ValueError, OSError, TypeError, SyntaxError):
        raise MicromotionError(f"{path}: corrupt .npy header") from None
    if dtype.hasobject:
        raise MicromotionError(f"{path}: holds Python objects, not numbers")
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise MicromotionError(f"{path}: corrupt or truncated .npy array") from None
    if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.floating):
        kind = arr.dtype if isinstance(arr, np.ndarray) else type(arr).__name__
        raise MicromotionError(f"{path}: {what} must be floating point, got {kind}")
    if not np.isfinite(arr).all():
        raise MicromotionError(f"{path}: {what} contain NaN or inf")
    if arr.size and float(np.abs(arr).max()) > FLOAT32_MAX:
        raise MicromotionError(f"{path}: {what} too large for float32 (over {FLOAT32_MAX:.4g})")
    return arr


def save_safetensors(
    tensors: dict[str, Any], path: str | os.PathLike[str], metadata: dict[str, str] | None = None
) -> Path:
    """Write ``tensors`` (and string ``metadata``) as ``.safetensors``, atomically.

    The same content gives the same bytes (see :func:`sort_safetensors_metadata`).
    Returns the path.
    """
    from safetensors.torch import save_file

    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
        sort_safetensors_metadata(tmp)
    return path


def sort_safetensors_metadata(path: str | os.PathLike[str]) -> None:
    """Rewrite a ``.safetensors`` header in place with its ``__metadata__`` keys sorted.

    The safetensors library keeps metadata in a hash map whose order changes from process to
    process, so the same tensors and metadata would give different bytes each run. The sorted
    header has the same length (the same keys and values, reordered), so the tensor data and
    its offsets are untouched.
    """
    with open(path, "r+b") as fh:
        size = int.from_bytes(fh.read(8), "little")
        raw = fh.read(size)
        header = json.loads(raw)
        meta = header.get("__metadata__")
        if not isinstance(meta, dict) or len(meta) < 2:
            return
        header["__metadata__"] = dict(sorted(meta.items()))
        # The library writes compact JSON; only the order changes, never the length.
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        if len(text) > size:
            return  # a header written some other way: left as it is
        fh.seek(8)
        fh.write(text + b" " * (size - len(text)))  # the format pads headers with spaces
