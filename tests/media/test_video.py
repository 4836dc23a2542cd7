"""Clip writers: MP4/GIF/PNG decode back right; failures leave nothing behind."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from micromotion import MicromotionError
from micromotion.media.video_in import read_video_frames
from micromotion.media.video_out import STRIP_MAX_FRAMES, open_clip_writer
from micromotion.render.codes import loop_indices


def _frames(n=12, h=32, w=48, seed=0):
    rng = np.random.default_rng(seed)
    # Smooth frames (a moving gradient) so that lossy H.264 stays close to the input.
    y, x = np.mgrid[0:h, 0:w]
    return np.stack(
        [
            np.stack([(x * 4 + 10 * i) % 256, (y * 6) % 256, np.full_like(x, 30 * i % 256)], -1)
            for i in range(n)
        ]
    ).astype(np.uint8) + rng.integers(0, 2, (n, h, w, 3), dtype=np.uint8)


def test_mp4_round_trip(tmp_path):
    frames = _frames()
    path = tmp_path / "clip.mp4"
    with open_clip_writer(path, fps=10, total_frames=12, comment=json.dumps({"k": 1})) as sink:
        sink.write(frames[:5])
        sink.write(frames[5:])
    back = read_video_frames(path)
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 6  # lossy, but the same clip
    assert list(tmp_path.iterdir()) == [path]


def test_gif_and_png_strip(tmp_path):
    frames = _frames(n=25)
    with open_clip_writer(tmp_path / "a.gif", fps=25, total_frames=25) as sink:
        sink.write(frames)
    gif = Image.open(tmp_path / "a.gif")
    assert gif.n_frames == 25 and gif.size == (48, 32)
    with open_clip_writer(tmp_path / "a.png", fps=25, total_frames=25, comment="{}") as sink:
        sink.write(frames)
    strip = np.asarray(Image.open(tmp_path / "a.png").convert("RGB"))
    assert strip.shape == (32, 48 * STRIP_MAX_FRAMES, 3)
    np.testing.assert_array_equal(strip[:, :48], frames[0])  # lossless: first frame exact
    np.testing.assert_array_equal(strip[:, -48:], frames[-1])


def test_failure_midway_leaves_nothing(tmp_path):
    path = tmp_path / "clip.mp4"
    with (
        pytest.raises(RuntimeError, match="boom"),
        open_clip_writer(path, fps=10, total_frames=4) as sink,
    ):
        sink.write(_frames(n=2))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_bad_destinations(tmp_path):
    with (
        pytest.raises(MicromotionError, match=r"must end in \.mp4, \.gif or \.png"),
        open_clip_writer(tmp_path / "clip.avi", fps=10, total_frames=2),
    ):
        pass
    (tmp_path / "file").write_text("x")
    with (
        pytest.raises(MicromotionError, match="is not a directory"),
        open_clip_writer(tmp_path / "file" / "clip.mp4", fps=10, total_frames=2),
    ):
        pass
    with (
        pytest.raises(MicromotionError, match="even frame sizes"),
        open_clip_writer(tmp_path / "odd.mp4", fps=10, total_frames=1) as sink,
    ):
        sink.write(np.zeros((1, 31, 32, 3), np.uint8))
    assert not (tmp_path / "odd.mp4").exists()


def test_loop_indices():
    assert loop_indices(4, "none") == [0, 1, 2, 3]
    assert loop_indices(4, "pingpong") == [0, 1, 2, 3, 2, 1]
    with pytest.raises(MicromotionError):
        loop_indices(4, "bounce")


def test_unreadable_video(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(MicromotionError, match="bad.mp4: cannot decode video"):
        read_video_frames(bad)
