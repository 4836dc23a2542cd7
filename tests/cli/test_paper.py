"""``micromotion paper``: main.py in one command, equal to the two commands it stands for."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from encoder_ckpt_writer import paper_render_inputs
from helpers import TINY_CLIP, tiny_clip_module
from micromotion.media.video_in import read_video_frames
from micromotion.subspace.micromotion import Micromotion

pytest.importorskip("dlib")  # the paper's render aligns the photo
pytest.importorskip("skimage.data")  # the photo (paper_render_inputs)

ENV = {"SOURCE_DATE_EPOCH": "1700000000"}


def run(*args):
    from micromotion.cli import main

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny random networks saturate; not under test
        return CliRunner().invoke(main, [str(a) for a in args], env=ENV)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The paper's render inputs (tiny ReStyle checkpoint, photo, micromotions), a tiny CLIP."""
    tmp = tmp_path_factory.mktemp("paper")
    made = paper_render_inputs(tmp)
    cfg = tmp / "tiny-clip.json"
    cfg.write_text(json.dumps(TINY_CLIP))
    weights = tmp / "tiny-clip.pt"
    torch.save(tiny_clip_module(1).state_dict(), weights)
    return {**made, "clip": f"{cfg}:{weights}"}


def tiny(files):
    """The tiny generator and encoder stand in for the paper's, on the CPU."""
    return ("--generator", files["ckpt"], "--inverter", files["ckpt"], "--device", "cpu")


TEMPLATE = "a person with {degree} smile"


def test_custom_mode_is_discover_then_apply_in_one_command(files, tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    out = tmp_path / "one" / "mona.gif"
    result = run("paper", "--category", "custom", "--template", TEMPLATE,
                 "--image", files["photo"], "--clip", files["clip"], *tiny(files),
                 "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    # Every override is one note; the identity loss is off without --id-weights.
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert f"note: generator: {files['ckpt']} instead of the paper's ffhq-rosinality" in notes
    assert any(n.startswith("note: clip: ") for n in notes)
    assert any("identity loss is off" in n for n in notes)
    assert any("90%" in n for n in notes)  # the paper code's slip, in use
    names = sorted(p.name for p in out.parent.iterdir())
    assert names == sorted([
        "mona.gif", "mona.gif.json", "mona_aligned.png", "mona_recon.png", "mona_latent.npy",
        "mona.safetensors", "mona_anchors.npy", "mona_strip.png", "mona.json",
    ])  # fmt: skip
    mm = Micromotion.load(out.with_suffix(".safetensors"))
    assert mm.metadata["preset"] == "paper" and mm.metadata["end_anchor"] == -2
    assert mm.metadata["seed"] == 1 and mm.num_anchors == 12
    discovery = json.loads((out.parent / "mona.json").read_text())
    assert discovery["settings"]["steps"] == 40 and discovery["rpca_settings"] == "paper"
    clip = json.loads((out.parent / "mona.gif.json").read_text())
    assert clip["frames"] == 90 and clip["fps"] == 60.0 and clip["normalize"] == "minmax"
    assert clip["micromotions"][0]["strength"] == 7.12
    assert clip["preset"]["mode"] == "main.py --category custom (a text micromotion)"
    assert read_video_frames(out).shape == (90, 64, 64, 3)

    # The two commands it stands for give the same files, byte for byte.
    mm_two = tmp_path / "two" / "mona.safetensors"
    first = run("discover", "text", "--preset", "paper", "--template", TEMPLATE,
                "--generator", files["ckpt"], "--clip", files["clip"], "--device", "cpu",
                "-o", mm_two)  # fmt: skip
    assert first.exit_code == 0, first.output
    second = run("apply", mm_two, "--preset", "paper", "--image", files["photo"], *tiny(files),
                 "-o", tmp_path / "two" / "mona.gif")  # fmt: skip
    assert second.exit_code == 0, second.output
    assert mm_two.read_bytes() == out.with_suffix(".safetensors").read_bytes()
    # The clips differ only in the micromotion's path (one/ or two/) their records name.
    two = (tmp_path / "two" / "mona.gif").read_bytes()
    assert two.replace(b"/two/", b"/one/") == out.read_bytes()
    again = json.loads((tmp_path / "two" / "mona.gif.json").read_text())
    assert again["micromotions"][0]["spec"] == str(mm_two)
    again["micromotions"][0]["spec"] = str(out.with_suffix(".safetensors"))
    assert again == clip


def test_shipped_category_and_scale(files, tmp_path):
    out = tmp_path / "one" / "wink.mp4"
    out.parent.mkdir()
    result = run("paper", "--category", "smile", "--direction", files["official"],
                 "--image", files["photo"], "--scale", 3, *tiny(files), "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "note: strengths: 2.97 instead of the paper's 4.95" in result.stderr
    record = json.loads(out.with_name("wink.mp4.json").read_text())
    assert record["frames"] == 100 and record["fps"] == 30.0
    assert record["micromotions"][0]["strength"] == pytest.approx(2.97)
    assert record["preset"]["overrides"]["strengths"] == {"preset": [4.95], "given": [2.97]}
    assert not out.with_suffix(".safetensors").exists()  # nothing discovered
    same = tmp_path / "two" / "wink.mp4"
    same.parent.mkdir()
    typed = run("apply", files["official"], "--preset", "paper", "--strength", 2.97,
                "--image", files["photo"], *tiny(files), "-o", same)  # fmt: skip
    assert typed.exit_code == 0, typed.output
    assert same.read_bytes() == out.read_bytes()


def test_several_seeds_each_get_their_files(files, tmp_path):
    out = tmp_path / "grin.png"
    result = run("paper", "--category", "custom", "--template", TEMPLATE, "--seed", 4,
                 "--num-latent", 2, "--image", files["photo"], "--clip", files["clip"],
                 *tiny(files), "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert not out.exists()
    a, b = (Micromotion.load(tmp_path / f"grin_s{s}.safetensors") for s in (4, 5))
    assert (a.metadata["seed"], b.metadata["seed"]) == (4, 5)
    assert not torch.equal(a.direction, b.direction)  # two faces, two directions
    for s in (4, 5):
        assert (tmp_path / f"grin_s{s}.png").is_file()
        record = json.loads((tmp_path / f"grin_s{s}.json").read_text())
        assert record["preset"]["overrides"]["seed"] == {"preset": 1, "given": s}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--category", "custom"), "--template is required with --category custom"),
        (("--category", "custom", "--template", "smiling"), "{degree}"),
        (("--template", TEMPLATE), "--template only applies to --category custom"),
        (("--num-latent", 2), "--seed and --num-latent pick the start faces"),
        (("--category", "custom", "--template", TEMPLATE, "--direction", "x"), "--direction"),
        (("--category", "frown"), "'frown' is not one of"),
    ],
)
def test_bad_options_are_one_line(files, tmp_path, args, fragment):
    out = tmp_path / "x.mp4"
    result = run("paper", *args, "--image", files["photo"], *tiny(files), "-o", out)
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert fragment in lines[0], lines
    assert list(tmp_path.iterdir()) == []


def test_a_text_micromotion_is_not_a_category_direction(files, tmp_path):
    result = run("paper", "--direction", files["text"], "--image", files["photo"], *tiny(files),
                 "-o", tmp_path / "x.mp4")  # fmt: skip
    assert result.exit_code == 1
    assert "error: --direction " in result.stderr and "from text" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_photo_without_a_face_fails_before_discovery_and_leaves_nothing(files, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (256, 256), (128, 128, 128)).save(blank)
    result = run("paper", "--category", "custom", "--template", TEMPLATE, "--image", blank,
                 "--clip", files["clip"], *tiny(files), "-o", tmp_path / "x.gif")  # fmt: skip
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(blank) in lines[0] and "face" in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blank.png"]


def test_a_clip_that_fails_after_the_discovery_removes_the_micromotion(
    files, tmp_path, monkeypatch
):
    """The run is one result: a failure while rendering takes the new micromotion with it,
    and puts back what a previous run had left at those paths."""
    from micromotion.errors import MicromotionError
    from micromotion.pipelines import paper

    rendered = []

    def broken(*args, **kwargs):
        rendered.append(kwargs["output"])
        raise MicromotionError("disk full")

    monkeypatch.setattr(paper, "animate", broken)
    old = {name: f"old {name}".encode() for name in ("x.gif", "x.gif.json", "x.safetensors")}
    for name, data in old.items():
        (tmp_path / name).write_bytes(data)
    result = run("paper", "--category", "custom", "--template", TEMPLATE, "--image",
                 files["photo"], "--clip", files["clip"], *tiny(files),
                 "-o", tmp_path / "x.gif")  # fmt: skip
    assert result.exit_code == 1 and "error: disk full" in result.stderr
    assert rendered == [tmp_path / "x.gif"]  # the discovery had finished
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == old


def test_outputs_that_would_replace_an_input_are_refused_before_any_work(files, tmp_path):
    photo = tmp_path / "me_strip.png"
    photo.write_bytes(files["photo"].read_bytes())
    before = photo.read_bytes()
    result = run("paper", "--category", "custom", "--template", TEMPLATE, "--image", photo,
                 "--clip", files["clip"], *tiny(files), "-o", tmp_path / "me.gif")  # fmt: skip
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "me_strip.png" in lines[0], lines
    assert photo.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["me_strip.png"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--seed", 4294967295, "--num-latent", 2), "passes the last seed"),
        (("--num-latent", 0), "--num-latent"),
    ],
)
def test_seeds_past_the_last_are_refused(files, tmp_path, args, fragment):
    result = run("paper", "--category", "custom", "--template", TEMPLATE, *args, "--image",
                 files["photo"], *tiny(files), "-o", tmp_path / "x.gif")  # fmt: skip
    assert result.exit_code != 0 and fragment in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_command_line_starts_without_torch_and_agrees_with_the_pipeline(files, tmp_path):
    """`micromotion --help` stays fast: the paper command's choices come from core.defaults."""
    import subprocess
    import sys

    from micromotion.cli.paper import paper
    from micromotion.pipelines.paper import CATEGORIES, MAX_NUM_LATENT

    code = "import sys, micromotion.cli; print('torch' in sys.modules)"
    started = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert started.returncode == 0 and started.stdout.strip() == "False", started
    choices = next(p for p in paper.params if p.name == "category").type.choices
    assert tuple(choices) == CATEGORIES
    result = run("paper", "--category", "custom", "--template", TEMPLATE, "--num-latent",
                 MAX_NUM_LATENT + 1, "--image", files["photo"], *tiny(files),
                 "-o", tmp_path / "x.gif")  # fmt: skip
    assert result.exit_code == 1 and f"--num-latent {MAX_NUM_LATENT + 1}" in result.stderr
    assert list(tmp_path.iterdir()) == []
