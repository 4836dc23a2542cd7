"""Video in: the one decoder (imageio-ffmpeg's bundled ffmpeg), probing and picked frames.

Decoding streams frame by frame and keeps only the frames asked for, so a long clip never sits
in memory whole; more than :data:`MAX_DECODED_BYTES` of kept frames is refused up front.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from micromotion.errors import MicromotionError, ParameterError

MAX_DECODED_BYTES = 4 * 2**30
"""Kept frames are held decoded at full size (alignment needs it): refuse beyond 4 GiB."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video."""

    path: Path
    fps: float
    num_frames: int
    width: int
    height: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.num_frames / self.fps


def probe_video(path: str | Path) -> VideoInfo:
    """Read a video's frame rate, frame count and size, or fail with a one-line error."""
    import imageio_ffmpeg

    path = Path(path)
    if path.is_dir():
        raise MicromotionError(f"{path}: is a directory, not a video")
    if not path.is_file():
        raise MicromotionError(f"{path}: no such file")
    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        reader.close()
        # Counting decodes to a null sink: exact, and much cheaper than decoding to memory.
        num_frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    except (RuntimeError, OSError, StopIteration) as exc:
        raise MicromotionError(f"{path}: not a readable video ({_first_line(exc)})") from None
    width, height = meta.get("size", (0, 0))
    fps = float(meta.get("fps") or 0)
    if num_frames < 1 or width < 1 or height < 1:
        raise MicromotionError(f"{path}: the video has no frames")
    if not math.isfinite(fps) or fps <= 0:
        fps = 25.0  # containers without a rate (image sequences): only --start/--end use it
    return VideoInfo(path, fps, int(num_frames), int(width), int(height))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def read_frames_at(
    path: str | os.PathLike[str],
    indices: Iterable[int] | None = None,
    *,
    callback: Callable[[int], None] | None = None,
) -> dict[int, np.ndarray]:
    """Decode the video once, keeping the frames at ``indices`` (all when ``None``).

    Returns:
        ``{frame index: uint8 [H, W, 3]}``.

    Raises:
        MicromotionError: Unreadable or empty video.
        ParameterError: More than :data:`MAX_DECODED_BYTES` of frames asked for.
    """
    import imageio_ffmpeg

    wanted = None if indices is None else set(indices)
    kept: dict[int, np.ndarray] = {}
    reader = None
    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        width, height = meta["size"]
        frame_bytes = width * height * 3
        if wanted is not None and frame_bytes * len(wanted) > MAX_DECODED_BYTES:
            raise _too_large(path, len(wanted), width, height)
        for i, buf in enumerate(reader):
            if wanted is None or i in wanted:
                if wanted is None and frame_bytes * (len(kept) + 1) > MAX_DECODED_BYTES:
                    raise _too_large(path, len(kept) + 1, width, height, at_least=True)
                kept[i] = np.frombuffer(buf, np.uint8).reshape(height, width, 3).copy()
                if callback is not None:
                    callback(len(kept))
            if wanted is not None and len(kept) == len(wanted):
                break
    except (RuntimeError, OSError, StopIteration, ValueError) as exc:
        raise MicromotionError(f"{path}: cannot decode video ({_first_line(exc)})") from None
    finally:
        if reader is not None:
            reader.close()  # stops the ffmpeg process, also on errors and Ctrl-C
    if not kept:
        raise MicromotionError(f"{path}: the video has no frames")
    return kept


def read_video_frames(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode a whole video file to ``[T, H, W, 3]`` uint8 (for checks and small clips)."""
    path = Path(path)
    if not path.is_file():
        raise MicromotionError(f"{path}: no such file")
    frames = read_frames_at(path)
    return np.stack([frames[i] for i in sorted(frames)])


def _too_large(
    path: str | os.PathLike[str], count: int, width: int, height: int, *, at_least: bool = False
) -> ParameterError:
    need = width * height * 3 * count / 2**30
    more = "more than " if at_least else ""
    return ParameterError.worded(
        "{path}: {more}{count} frames of {size} would need {need} GiB (at most {limit} GiB are "
        "decoded); pick fewer with {frames} N or a larger {every} K",
        "frames",
        "every",
        path=path,
        more=more,
        count=count,
        size=f"{width}x{height}",
        need=f"{need:.1f}",
        limit=f"{MAX_DECODED_BYTES / 2**30:.0f}",
    )
