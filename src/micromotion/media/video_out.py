"""Write rendered frames as MP4 (H.264, yuv420p), GIF or a PNG strip, atomically.

Frames arrive in batches (``[B, H, W, 3]`` uint8) and an MP4 is streamed to the encoder as
they come. A GIF (Pillow writes it at the end) and ``--loop pingpong`` (frames replayed in
reverse) keep the clip's frames in memory; a PNG strip keeps at most ten. Each writer
renders into a temporary file beside the destination and renames it into place only when
the clip is complete.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from micromotion.core.io import atomic_path
from micromotion.core.outputs import check_writes
from micromotion.errors import MicromotionError

VIDEO_SUFFIXES = (".mp4", ".gif", ".png")
#: At most this many frames go into a PNG strip (evenly spaced, first and last included).
STRIP_MAX_FRAMES = 10


class FrameSink(Protocol):
    """Receives frames ``[B, H, W, 3]`` uint8, in order."""

    def write(self, frames: np.ndarray) -> None:
        """Append frames."""


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """Validate a clip destination: a known suffix, and a place the one output check accepts."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise MicromotionError(f"{path}: output must end in .mp4, .gif or .png")
    check_writes({"clip": path})
    return path


@contextlib.contextmanager
def open_clip_writer(
    path: str | os.PathLike[str],
    *,
    fps: float,
    total_frames: int,
    comment: str = "",
    suffix: str | None = None,
) -> Iterator[FrameSink]:
    """Open a sink for a clip; the file appears at ``path`` only if the block succeeds.

    Args:
        path: ``.mp4``, ``.gif`` or ``.png`` (a horizontal strip of up to
            :data:`STRIP_MAX_FRAMES` evenly spaced frames).
        fps: Frames per second (MP4, GIF).
        total_frames: How many frames will be written (the strip needs it up front).
        comment: Text stored in the file's metadata (provenance JSON).
        suffix: The format (``.mp4``...) when ``path`` is a temporary file of an
            :class:`~micromotion.core.outputs.OutputSet`: then it is written in place and the
            set renames it; by default the format is ``path``'s suffix and the write atomic.

    Yields:
        A sink whose ``write`` takes ``[B, H, W, 3]`` uint8 batches.
    """
    if suffix is None:
        path = check_output_path(path)
        with (
            atomic_path(path) as tmp,
            _open_sink(tmp, path.suffix, fps, total_frames, comment) as sink,
        ):
            yield sink
    else:
        with _open_sink(Path(path), suffix, fps, total_frames, comment) as sink:
            yield sink


@contextlib.contextmanager
def _open_sink(
    tmp: Path, suffix: str, fps: float, total_frames: int, comment: str
) -> Iterator[FrameSink]:
    suffix = suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise MicromotionError(f"{tmp}: output must end in .mp4, .gif or .png")
    if suffix == ".mp4":
        sink: _Sink = _Mp4Sink(tmp, fps=fps, comment=comment)
    elif suffix == ".gif":
        sink = _GifSink(tmp, fps=fps, comment=comment)
    else:
        sink = _StripSink(tmp, total_frames=total_frames, comment=comment)
    try:
        yield sink
        sink.close()
    except BaseException:
        sink.abort()
        raise


class _Sink:
    def write(self, frames: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        """Release resources after a failure; the temp file is removed by the caller."""


def _check_batch(frames: np.ndarray) -> np.ndarray:
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] not in (1, 3):
        raise ValueError(f"frames must be [B, H, W, 3] uint8, got {frames.shape} {frames.dtype}")
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    return np.ascontiguousarray(frames)


class _Mp4Sink(_Sink):
    """H.264 in yuv420p through imageio-ffmpeg's bundled ffmpeg binary."""

    def __init__(self, path: Path, *, fps: float, comment: str) -> None:
        self.path, self.fps, self.comment = path, fps, comment
        # imageio-ffmpeg's write_frames(): a generator that is sent frames.
        self._gen: Generator[None, Any, None] | None = None

    def _start(self, height: int, width: int) -> None:
        import imageio_ffmpeg

        if height % 2 or width % 2:
            raise MicromotionError(f"{self.path}: H.264/yuv420p needs even frame sizes")
        self._gen = imageio_ffmpeg.write_frames(
            str(self.path),
            (width, height),
            fps=self.fps,
            codec="libx264",
            pix_fmt_out="yuv420p",
            quality=None,
            bitrate=None,
            macro_block_size=2,
            output_params=[
                "-crf",
                "18",
                "-movflags",
                "+faststart",
                "-f",
                "mp4",
                "-metadata",
                f"comment={self.comment}",
            ],
            ffmpeg_log_level="error",
        )
        self._gen.send(None)

    def write(self, frames: np.ndarray) -> None:
        frames = _check_batch(frames)
        if self._gen is None:
            self._start(frames.shape[1], frames.shape[2])
            assert self._gen is not None  # _start either sets it or raises
        for frame in frames:
            self._gen.send(frame)

    def close(self) -> None:
        if self._gen is None:
            raise MicromotionError(f"{self.path}: no frames to write")
        self._gen.close()
        self._gen = None

    def abort(self) -> None:
        if self._gen is not None:
            # Kill ffmpeg and wait for it before the caller deletes the partial file: closing
            # the generator alone lets ffmpeg finish the clip, and with +faststart it reopens
            # the output by name to move the index, which can recreate a file already deleted.
            # The process is the generator's local `p` (imageio-ffmpeg's write_frames).
            frame = getattr(self._gen, "gi_frame", None)  # a generator object's own frame
            process = frame.f_locals.get("p") if frame is not None else None
            if isinstance(process, subprocess.Popen) and process.poll() is None:
                with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                    process.kill()
                    process.wait(timeout=10)
            with contextlib.suppress(Exception):
                self._gen.close()
            self._gen = None


class _GifSink(_Sink):
    """Animated GIF via Pillow (it needs all frames at the end)."""

    def __init__(self, path: Path, *, fps: float, comment: str) -> None:
        self.path, self.fps, self.comment = path, fps, comment
        self.frames: list[np.ndarray] = []

    def write(self, frames: np.ndarray) -> None:
        self.frames.extend(_check_batch(frames))

    def close(self) -> None:
        from PIL import Image

        if not self.frames:
            raise MicromotionError(f"{self.path}: no frames to write")
        images = [Image.fromarray(f) for f in self.frames]
        images[0].save(
            self.path,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=max(round(1000 / self.fps), 20),
            loop=0,
            comment=self.comment.encode(),
        )


class _StripSink(_Sink):
    """A horizontal PNG strip of evenly spaced frames."""

    def __init__(self, path: Path, *, total_frames: int, comment: str) -> None:
        self.path, self.comment = path, comment
        count = min(total_frames, STRIP_MAX_FRAMES)
        picks: np.ndarray | list[int] = (
            np.linspace(0, total_frames - 1, count).round().astype(int) if count else []
        )
        self.wanted = {int(i) for i in picks}
        self.seen = 0
        self.kept: list[np.ndarray] = []

    def write(self, frames: np.ndarray) -> None:
        for frame in _check_batch(frames):
            if self.seen in self.wanted:
                self.kept.append(frame)
            self.seen += 1

    def close(self) -> None:
        from PIL import Image
        from PIL.PngImagePlugin import PngInfo

        if not self.kept:
            raise MicromotionError(f"{self.path}: no frames to write")
        info = PngInfo()
        info.add_text("micromotion", self.comment)
        Image.fromarray(np.concatenate(self.kept, axis=1)).save(
            self.path, format="PNG", pnginfo=info
        )
