"""The MP4 writer's abort: the encoder is stopped before the partial file is removed."""

from __future__ import annotations

import numpy as np


def test_an_aborted_mp4_stops_ffmpeg_before_its_file_is_removed(tmp_path):
    """Abort kills the encoder at once: it can no longer finish (and rewrite) the file."""
    from micromotion.media import video_out

    sink = video_out._Mp4Sink(tmp_path / "x.mp4", fps=10, comment="test")
    sink.write(np.zeros((4, 64, 64, 3), np.uint8))
    process = sink._gen.gi_frame.f_locals["p"]
    assert process.poll() is None
    sink.abort()
    assert process.poll() is not None  # dead and reaped before abort returned
