"""``apply --preset paper``: main.py's render on one flag, per mode, overrides recorded."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from encoder_ckpt_writer import paper_render_inputs
from micromotion.media.video_in import probe_video, read_video_frames
from micromotion.pipelines.presets import PAPER_RENDER_DIFFERENCES, preset_values

pytest.importorskip("dlib")  # --preset paper aligns the photo (--alignment paper)
pytest.importorskip("skimage.data")  # the photo (paper_render_inputs)


def run(*args, env=None):
    from micromotion.cli import main

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny random networks saturate; not under test
        return CliRunner().invoke(main, [str(a) for a in args], env=env)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny ReStyle checkpoint (its decoder is the generator), a photo, three micromotions."""
    return paper_render_inputs(tmp_path_factory.mktemp("apply_preset"))


def tiny(files):
    """The options every run here needs: the tiny generator and encoder, on the CPU."""
    return ("--image", files["photo"], "--generator", files["ckpt"], "--inverter", files["ckpt"],
            "--device", "cpu")  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "frames", "strength", "fps"),
    [("official", 100, 4.95, 30.0), ("text", 90, 7.12, 60.0)],
)
def test_preset_renders_as_main_py_and_equals_the_options_typed_out(
    files, tmp_path, kind, frames, strength, fps
):
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    # Same file names in two folders: the clip's record names its side files.
    (tmp_path / "preset").mkdir()
    (tmp_path / "spelt").mkdir()
    out = tmp_path / "preset" / "clip.mp4"
    result = run("apply", files[kind], *tiny(files), "--preset", "paper", "-o", out, env=env)
    assert result.exit_code == 0, result.output
    # Both tiny files override the preset's: each is one note, and recorded.
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 2, result.stderr
    assert f"note: --generator {files['ckpt']} overrides --preset paper (ffhq-rosinality)" in notes
    assert any(n.startswith("note: --inverter ") and "(restyle-psp-ffhq)" in n for n in notes)
    record = json.loads(out.with_name("clip.mp4.json").read_text())
    assert record["frames"] == frames and record["fps"] == fps
    assert record["normalize"] == "minmax" and record["micromotions"][0]["strength"] == strength
    inverter = record["start"]["inverter"]
    assert inverter["method"] == "restyle-psp" and inverter["iterations"] == 5
    assert inverter["alignment"] == "paper"
    preset = record["preset"]
    assert preset["name"] == "paper" and preset["mode"].startswith("main.py --category")
    assert set(preset["overrides"]) == {"generator", "inverter"}
    assert preset["overrides"]["generator"] == {
        "preset": "ffhq-rosinality",
        "given": str(files["ckpt"]),
    }
    assert preset["differences"] == list(PAPER_RENDER_DIFFERENCES)
    assert read_video_frames(out).shape == (frames, 64, 64, 3)
    assert probe_video(out).fps == pytest.approx(fps)
    # The same command spelt out, option by option: the same clip, byte for byte.
    spelt = tmp_path / "spelt" / "clip.mp4"
    typed = run("apply", files[kind], *tiny(files), "--iterations", 5, "--refine", 0,
                "--alignment", "paper", "--normalize", "minmax", "--frames", frames,
                "--strength", strength, "--fps", fps, "-o", spelt, env=env)  # fmt: skip
    assert typed.exit_code == 0, typed.output
    assert "note:" not in typed.stderr
    assert spelt.read_bytes() == out.read_bytes()
    again = json.loads(spelt.with_name("clip.mp4.json").read_text())
    assert "preset" not in again
    assert {k: v for k, v in record.items() if k != "preset"} == again


def test_typed_clip_options_override_the_preset_and_are_recorded(files, tmp_path):
    out = tmp_path / "short.gif"
    result = run("apply", files["text"], *tiny(files), "--preset", "paper", "--frames", 3,
                 "--strength", 2, "--normalize", "clamp", "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "note: --frames 3 overrides --preset paper (90)" in result.stderr
    assert "note: --strength 2.0 overrides --preset paper (7.12)" in result.stderr
    assert "note: --normalize clamp overrides --preset paper (minmax)" in result.stderr
    record = json.loads((tmp_path / "short.gif.json").read_text())
    assert record["frames"] == 3 and record["normalize"] == "clamp" and record["fps"] == 60.0
    assert record["micromotions"][0]["strength"] == 2.0
    overrides = record["preset"]["overrides"]
    assert overrides["frames"] == {"preset": 90, "given": 3}
    assert overrides["strengths"] == {"preset": [7.12], "given": [2.0]}
    assert set(overrides) == {"frames", "strengths", "normalize", "generator", "inverter"}


def test_what_main_py_never_rendered_is_one_error_line(files, tmp_path):
    for args, fragment in [
        ((files["video"],), "blink comes from video"),
        ((files["text"], files["official"]), "renders one micromotion"),
    ]:
        result = run("apply", *args, *tiny(files), "--preset", "paper", "-o", tmp_path / "x.mp4")
        assert result.exit_code == 1, result.output
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: --preset paper "), lines
        assert fragment in lines[0]
    assert not (tmp_path / "x.mp4").exists()


def test_library_refuses_a_preset_record_the_settings_do_not_match(files, tmp_path):
    from micromotion.errors import ParameterError
    from micromotion.pipelines.animate import ClipSettings, animate, preset_render
    from micromotion.pipelines.presets import resolve_preset

    assert preset_render([files["official"]]) == "render-official"
    assert preset_values("paper", "render-text")["frames"] == 90
    record = resolve_preset("paper", "render-text", {"generator": str(files["ckpt"])}).record
    with pytest.raises(ParameterError, match="frames is 3, the preset's 90"):
        animate([files["text"]], output=tmp_path / "x.png", generator=files["ckpt"], seed=0,
                clip=ClipSettings(frames=3), preset=record, device="cpu")  # fmt: skip
    assert not np.any([p.exists() for p in tmp_path.iterdir()])
