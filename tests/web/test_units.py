"""The web app's parts without a browser: previews, session directories, the command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from helpers import write_lossless_mp4
from micromotion.errors import MicromotionError, ParameterError
from micromotion.pipelines import preview
from micromotion.subspace.micromotion import Micromotion
from micromotion.web import Limits, WebConfig, require_gradio
from micromotion.web.sessions import SessionFiles


def _frames(count=5, size=40):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    return np.stack([np.roll(base, 3 * i, axis=1) for i in range(count)])


def test_clip_to_gif_keeps_every_frame_and_the_record(tmp_path):
    frames = _frames()
    clip = tmp_path / "c.mp4"
    write_lossless_mp4(clip, frames, fps=8)
    (tmp_path / "c.mp4.json").write_text(json.dumps({"frames": 5}))
    out = preview.clip_to_gif(clip, tmp_path / "c.gif")
    with Image.open(out) as gif:
        assert gif.n_frames == 5 and gif.size == (40, 40)
        assert 120 <= gif.info["duration"] <= 130  # 8 fps (GIF counts in 10 ms)
        assert json.loads(gif.info["comment"]) == {"frames": 5}
        gif.seek(4)
        last = np.asarray(gif.convert("RGB")).astype(int)
    assert np.abs(last - frames[4].astype(int)).mean() < 12  # the last frame, palette aside
    assert np.abs(last - frames[0].astype(int)).mean() > 30


def test_clip_to_gif_scales_down_and_refuses_other_suffixes(tmp_path):
    clip = tmp_path / "c.mp4"
    write_lossless_mp4(clip, _frames(3, 64), fps=10)
    with Image.open(preview.clip_to_gif(clip, tmp_path / "s.gif", max_side=32)) as gif:
        assert gif.size == (32, 32) and gif.n_frames == 3
    with pytest.raises(MicromotionError, match="must end in .gif"):
        preview.clip_to_gif(clip, tmp_path / "s.mp4")
    assert not (tmp_path / "s.mp4").exists()


def test_check_photo_and_video_limits(tmp_path):
    Image.fromarray(np.zeros((30, 50, 3), np.uint8)).save(tmp_path / "p.png")
    info = preview.check_photo(tmp_path / "p.png", max_pixels=1500)
    assert (info.width, info.height) == (50, 30)
    with pytest.raises(MicromotionError, match="over the limit"):
        preview.check_photo(tmp_path / "p.png", max_pixels=1499)
    clip = tmp_path / "v.mp4"
    write_lossless_mp4(clip, _frames(6, 16), fps=3)  # 2 s
    assert preview.check_video(clip, max_seconds=2, max_frames=6, max_pixels=256).num_frames == 6
    with pytest.raises(MicromotionError, match=r"2\.0 s long, over the limit of 1\.5 s"):
        preview.check_video(clip, max_seconds=1.5, max_frames=6, max_pixels=256)
    with pytest.raises(MicromotionError, match="6 frames, over the limit of 5"):
        preview.check_video(clip, max_seconds=9, max_frames=5, max_pixels=256)
    with pytest.raises(MicromotionError, match="16x16, over the limit"):
        preview.check_video(clip, max_seconds=9, max_frames=9, max_pixels=255)
    (tmp_path / "x.mp4").write_text("no video")
    with pytest.raises(MicromotionError, match="not a readable video"):
        preview.check_video(tmp_path / "x.mp4", max_seconds=9, max_frames=9, max_pixels=9)


def test_plot_shows_moved_layers_and_the_spectrum(tmp_path):
    from micromotion.pipelines.preview import BAR_WIDTH

    direction = torch.zeros(6, 4)
    direction[1] = 3.0
    direction[4] = 1.0
    mask = torch.tensor([False, True, True, True, True, False])
    mm = Micromotion(direction=direction, mask=mask, metadata={"name": "m"})
    summary = mm.summary()
    summary["singular_values"] = [[4.0, 1.0, 0.1]] * 6
    out = preview.plot_micromotion(summary, tmp_path / "p.png", width=600)
    image = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert image.shape == (2 * 200, 600, 3)
    # The bars panel (the top half): bars in matplotlib's first colour, C0 = #1f77b4.
    blue = np.abs(image[:200] - np.array([31, 119, 180])).sum(axis=2) < 10
    columns = np.flatnonzero(blue.any(axis=0))
    runs = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)
    # Two bars (layers 1 and 4; the others are zero), three layers apart, the first 3x taller.
    assert len(runs) == 2, [(r[0], r[-1]) for r in runs]
    widths = [len(r) for r in runs]
    gap = (runs[1].mean() - runs[0].mean()) / np.mean(widths)
    assert abs(gap - 3 / BAR_WIDTH) < 0.3, gap
    heights = [blue[:, int(r.mean())].sum() for r in runs]
    assert 2.8 < heights[0] / heights[1] < 3.2, heights
    # The spectrum (bottom half) draws σ2 and σ3 as lines across all six layers in C1 and C2:
    # far more pixels than a legend handle holds.
    bottom = image[200:]
    for colour in ((255, 127, 14), (44, 160, 44)):  # C1, C2
        assert (np.abs(bottom - np.array(colour)).sum(axis=2) < 10).sum() > 300, colour
    # A layer out of the mask that the direction still moves is drawn grey.
    summary["per_layer_norm"][5] = 2.0
    grey = preview.plot_micromotion(summary, tmp_path / "g.png", width=600)
    top = np.asarray(Image.open(grey).convert("RGB")).astype(int)[:200]
    assert (np.abs(top - 191).sum(axis=2) < 6).sum() > 100
    assert not (np.abs(image[:200] - 191).sum(axis=2) < 6).sum() > 100
    assert json.loads(Image.open(out).info["micromotion"])["name"] == "m"


def test_session_files_are_private_and_dropped(tmp_path):
    files = SessionFiles(tmp_path, keep_jobs=2)
    jobs = [files.job_dir("../../evil", "animate") for _ in range(3)]
    assert all(j.parent.parent == tmp_path for j in jobs)  # the hash never makes a path
    assert [j.is_dir() for j in jobs] == [False, True, True]  # the oldest job is gone
    other = files.job_dir("b", "inspect")
    files.drop("../../evil")
    assert not jobs[2].parent.exists() and other.is_dir()
    assert files.sessions() == ["b"]
    files.close()
    assert list(tmp_path.iterdir()) == []


def test_limits_and_config_refuse_nonsense():
    with pytest.raises(ParameterError, match="frames 1: a clip needs at least 2"):
        Limits(frames=1)
    with pytest.raises(ParameterError, match="upload_bytes 0"):
        Limits(upload_bytes=0)
    with pytest.raises(ParameterError, match="concurrency 0"):
        WebConfig(concurrency=0)


def test_web_command_without_gradio_is_one_line(monkeypatch):
    import importlib.util

    from micromotion.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else real(name, *a)
    )
    with pytest.raises(MicromotionError, match=r'pip install "micromotion\[web\]"'):
        require_gradio()
    result = CliRunner().invoke(main, ["web", "--generator", "nothing.safetensors"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        'error: the web app needs Gradio, which is not installed: pip install "micromotion[web]"'
    )


def test_web_command_bad_generator_is_one_line(tmp_path):
    from micromotion.cli import main

    result = CliRunner().invoke(
        main, ["web", "--generator", str(tmp_path / "missing.safetensors"), "--port", "1"]
    )
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "missing.safetensors" in errors[0], result.output
    assert "Traceback" not in result.output
    assert not list(Path(tmp_path).iterdir())


def test_each_job_gets_only_its_own_warnings():
    """Two jobs at once (--concurrency 2): each page shows its own warnings, in order."""
    import threading
    import warnings

    from micromotion.web.app import job_warnings

    barrier = threading.Barrier(2, timeout=10)
    seen: dict[str, list[str]] = {}

    def job(name: str) -> None:
        sink: list[warnings.WarningMessage] = []
        with job_warnings(sink):
            for step in ("first", "second"):
                barrier.wait()  # both jobs are inside their block before either warns
                warnings.warn(f"{name} {step}", UserWarning, stacklevel=1)
            barrier.wait()
        seen[name] = [str(w.message) for w in sink]

    threads = [threading.Thread(target=job, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a": ["a first", "a second"], "b": ["b first", "b second"]}


def test_warnings_outside_a_job_go_where_they_went_before(monkeypatch):
    import warnings

    from micromotion.web import app

    shown: list[str] = []
    monkeypatch.setattr(warnings, "showwarning", lambda message, *rest: shown.append(message))
    app._route_warnings()  # puts its hook in front of the one above
    assert warnings.showwarning is app._show
    sink: list[warnings.WarningMessage] = []
    with app.job_warnings(sink):
        warnings.warn("inside", UserWarning, stacklevel=1)
    warnings.warn("outside", UserWarning, stacklevel=1)
    assert [str(w.message) for w in sink] == ["inside"]
    assert [str(m) for m in shown] == ["outside"]


def test_animate_with_a_cleaned_up_discovery_is_one_message(tmp_path):
    gr = pytest.importorskip("gradio")
    from micromotion.web.app import _animate_with

    made = tmp_path / "grin.safetensors"
    made.write_bytes(b"x")
    assert _animate_with(str(made))[0] == str(made)
    made.unlink()
    with pytest.raises(gr.Error, match="grin.safetensors was cleaned up"):
        _animate_with(str(made))
    with pytest.raises(gr.Error, match="discover a micromotion first"):
        _animate_with(None)
