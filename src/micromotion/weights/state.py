"""The one safe ``torch.load`` and the one strict state-dict check, shared by every weight file.

Every ``.pt``/``.pth`` file micromotion reads — rosinality generators, LPIPS and VGG16
weights, IR-SE50, the paper's direction tensors, encoders — goes through
:func:`load_torch_file` (``torch.load(weights_only=True)``: a pickle that would build a class
or call a function is refused before anything runs) and every state dict through
:func:`check_state_dict` (exactly the expected keys, the expected shapes, finite floating-point
values). Problems are one line that names the file, in one format:

* ``PATH: refused to load objects that are not plain data (GLOBAL): WHAT must be a
  weights-only file of tensors``
* ``PATH: corrupt or truncated torch file: damaged, or not a PyTorch weights file (DETAIL)``
* ``PATH: not WHAT (missing keys: A, B; unexpected keys: C)``
* ``PATH: tensor NAME has shape [..], expected [..]`` / ``is int64, not floating point`` /
  ``contains NaN or inf``

torch's own advice on a refused file ("re-run with weights_only=False") is never relayed: the
file may be hostile.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeAlias

import torch

from micromotion.core.io import StrPath, require_file
from micromotion.errors import CheckpointError

_MAX_LISTED = 3  # keys named in a message; the rest are counted

#: Names of state-dict entries.
Keys: TypeAlias = Collection[str]


def load_torch_file(
    path: StrPath,
    *,
    what: str,
    safe_globals: Iterable[Any] = (),
    mmap: bool = False,
) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, every failure as one line.

    Args:
        path: The file.
        what: What it should hold, for messages (``"IR-SE50 weights"``).
        safe_globals: Plain-data classes allowed beyond torch's own (rosinality's training
            checkpoints store an ``argparse.Namespace``).
        mmap: Memory-map a zip-format file (a large file whose parts are dropped is then
            never read whole).

    Raises:
        CheckpointError: Missing file, a file that would build objects, or a damaged file.
    """
    p = require_file(path, what=f"a file of {what}", error=CheckpointError)
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(
                p, map_location="cpu", weights_only=True, mmap=mmap and zipfile.is_zipfile(p)
            )
    except pickle.UnpicklingError as exc:
        # The weights-only unpickler refuses every global outside its allow-list before
        # anything runs; say what the file asked for, never torch's advice to load unsafely.
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found is None:
            raise CheckpointError(_damaged(p, type(exc).__name__)) from None
        raise CheckpointError(
            f"{p}: refused to load objects that are not plain data ({found.group(1)}): "
            f"{what} must be a weights-only file of tensors"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError) as exc:
        # Truncated or foreign files fail in many ways, with multi-line or cryptic messages.
        text = str(exc).strip()
        detail = text.splitlines()[0][:160] if text else type(exc).__name__
        raise CheckpointError(_damaged(p, detail)) from None


def _damaged(path: Path, detail: str) -> str:
    return (
        f"{path}: corrupt or truncated torch file: damaged, or not a PyTorch weights file "
        f"({detail})"
    )


def as_state_dict(obj: Any, path: StrPath, *, what: str) -> dict[str, torch.Tensor]:
    """Check that a loaded object is a flat ``{name: tensor}`` dict and return it.

    Raises:
        CheckpointError: Naming the file and the first entry that is not a tensor.
    """
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{path}: not {what}: expected a dict of tensors, got {type(obj).__name__}"
        )
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{path}: not {what}: entry {key!r} is a {type(value).__name__}, not a tensor"
            )
    return dict(obj)


def check_keys(
    expected: Keys, got: Keys, path: StrPath, problem: str, *, optional: Keys = ()
) -> None:
    """Strict key matching; the differences are listed in the one-line error.

    Args:
        expected: The keys that must be there.
        got: The keys that are there.
        path: The file, for the message.
        problem: What a mismatch means (``"not IR-SE50 weights"``).
        optional: Expected keys that may be absent (older PyTorch's ``num_batches_tracked``).
    """
    missing = set(expected) - set(got) - set(optional)
    unexpected = set(got) - set(expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {_list(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_list(unexpected)}")
        raise CheckpointError(f"{path}: {problem} ({'; '.join(parts)})")


def check_state_dict(
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Tensor],
    path: StrPath,
    *,
    problem: str,
    optional: Keys = (),
) -> None:
    """Exactly the expected keys and shapes, floating-point and finite values, or one line.

    Args:
        state: The tensors read from the file.
        expected: A module's ``state_dict()`` (only names and shapes are used).
        path: The file, for the message.
        problem: As for :func:`check_keys` (``"not LPIPS v0.1 VGG linear weights"``).
        optional: As for :func:`check_keys`.

    Raises:
        CheckpointError: On the first problem found.
    """
    check_keys(expected, state, path, problem, optional=optional)
    for name, ref in expected.items():
        if name not in state:
            continue
        value = state[name]
        if tuple(value.shape) != tuple(ref.shape):
            raise CheckpointError(
                f"{path}: tensor {name} has shape {list(value.shape)}, expected {list(ref.shape)}"
            )
        if ref.is_floating_point() or not _is_counter(name):
            check_tensor_values(value, name, path)


def check_tensor_values(value: torch.Tensor, name: str, path: StrPath) -> None:
    """A floating-point tensor with finite values, or a one-line :class:`CheckpointError`."""
    if not value.is_floating_point():
        raise CheckpointError(f"{path}: tensor {name} is {_dtype(value)}, not floating point")
    if not torch.isfinite(value).all():
        raise CheckpointError(f"{path}: tensor {name} contains NaN or inf")


def _is_counter(name: str) -> bool:
    """BatchNorm's integer step counter, the one integer buffer a network may have."""
    return name.endswith("num_batches_tracked")


def _dtype(value: torch.Tensor) -> str:
    return str(value.dtype).removeprefix("torch.")


def _natural(key: str) -> tuple[Any, ...]:
    """Sort ``features.10.weight`` after ``features.2.weight``."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in key.split("."))


def _list(keys: Collection[str]) -> str:
    ordered = sorted(keys, key=_natural)
    shown = ", ".join(ordered[:_MAX_LISTED])
    more = len(ordered) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")
