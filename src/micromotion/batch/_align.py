"""Face alignment for batch rows, run in worker processes (local) or Ray tasks.

Kept apart from the engines so a worker imports only what alignment needs. A face that
cannot be found is returned as its error, not raised: the row fails later, in its pipeline,
with exactly the message the single command gives.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from micromotion.errors import MicromotionError


def init_worker() -> None:
    """One thread per alignment worker: the workers, not their threads, fill the cores."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = "1"
    import torch

    torch.set_num_threads(1)


def align_photo(photo: str, resolution: int, align: bool, face: int | None) -> Any:
    """The photo's :class:`~micromotion.pipelines.photo.FaceCrop`, or the error it gives."""
    from micromotion.pipelines.photo import face_crop

    try:
        return face_crop(Path(photo), resolution=resolution, align=align, face=face)
    except MicromotionError as exc:
        return MicromotionError(str(exc))
