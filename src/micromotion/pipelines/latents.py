"""W+ codes from files: one code ``[num_ws, w_dim]`` out of a ``.npy`` (never unpickled)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from micromotion.core.io import load_float_npy
from micromotion.errors import MicromotionError, ParameterError


def read_code(path: Path, index: int | None, *, num_ws: int, w_dim: int) -> torch.Tensor:
    """Read one W+ code ``[num_ws, w_dim]`` from a ``.npy`` file; never unpickles.

    Accepts ``[w_dim]``, ``[num_ws, w_dim]``, or ``[N, num_ws, w_dim]`` with ``index``.
    """
    arr = load_float_npy(path, what="codes")
    if arr.ndim == 3:
        if arr.shape[0] == 0:
            raise MicromotionError(f"{path}: holds no codes")
        if index is None and arr.shape[0] != 1:
            raise ParameterError.worded(
                "{path}: holds {n} codes; pick one with {index} (0-{last})",
                "index",
                path=path,
                n=arr.shape[0],
                last=arr.shape[0] - 1,
            )
        i = 0 if index is None else index
        if not 0 <= i < arr.shape[0]:
            raise ParameterError.worded(
                "{path}: {index} {i} out of range (0-{last})",
                "index",
                path=path,
                i=i,
                last=arr.shape[0] - 1,
            )
        arr = arr[i]
    elif index not in (None, 0):
        raise ParameterError.worded(
            "{path}: {index} given but the file holds a single code", "index", path=path
        )
    if arr.ndim == 1 and arr.shape[0] == w_dim:
        arr = np.broadcast_to(arr, (num_ws, w_dim))
    if arr.shape != (num_ws, w_dim):
        raise MicromotionError(
            f"{path}: code of shape {list(arr.shape)} does not fit this generator "
            f"([{num_ws}, {w_dim}])"
        )
    if not np.isfinite(arr).all():
        raise MicromotionError(f"{path}: the code contains NaN or inf")
    return torch.from_numpy(np.array(arr, dtype=np.float32))
