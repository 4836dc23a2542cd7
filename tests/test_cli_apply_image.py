"""`micromotion apply --image PHOTO`: align → invert → edit → render, as a user runs it."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from conftest import tiny_generator
from micromotion import save_generator, zoo
from micromotion.direction import Micromotion
from micromotion.images import to_uint8
from micromotion.video import read_video_frames

dlib = pytest.importorskip("dlib")
skdata = pytest.importorskip("skimage.data")


def run(*args):
    from micromotion.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("apply_image")
    G = tiny_generator(7, img_resolution=16, channels=(12, 12, 8), z_dim=8, w_dim=8)
    with torch.no_grad():  # keep images mostly inside [-1, 1], as a trained network's
        for name, p in G.named_parameters():
            if ".torgb." in name and ".affine." not in name:
                p.mul_(0.3)
    mm = Micromotion(
        direction=torch.randn(G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(1)),
        mask=torch.ones(G.num_ws, dtype=torch.bool),
        metadata={"name": "wiggle", "generator_fingerprint": G.fingerprint()},
    )
    Image.fromarray(skdata.astronaut()).save(tmp / "astronaut.jpg", quality=95)
    return {
        "G": G,
        "gen": save_generator(G, tmp / "g.safetensors"),
        "mm": mm.save(tmp / "wiggle.safetensors"),
        "photo": tmp / "astronaut.jpg",
    }


def test_apply_to_a_photo(files, tmp_path):
    out = tmp_path / "clip.gif"
    result = run(
        "apply",
        files["mm"],
        "--image",
        files["photo"],
        "--generator",
        files["gen"],
        "--steps",
        60,
        "--frames",
        4,
        "--strength",
        2,
        "-o",
        out,
    )
    assert result.exit_code == 0, result.output
    assert "reconstruction PSNR" in result.output
    G = files["G"]
    aligned = np.asarray(Image.open(tmp_path / "clip_aligned.png"))
    recon = np.asarray(Image.open(tmp_path / "clip_recon.png"))
    code = np.load(tmp_path / "clip_latent.npy", allow_pickle=False)
    assert aligned.shape == recon.shape == (16, 16, 3) and code.shape == (G.num_ws, G.w_dim)
    w = torch.from_numpy(code)
    with torch.no_grad():
        rendered = to_uint8(G.synthesis(w[None]))[0]
    # The saved code is what the reconstruction shows, and the clip starts from that code.
    assert np.abs(rendered.astype(int) - recon.astype(int)).max() <= 1
    frames = read_video_frames(out) if out.suffix == ".mp4" else _gif_frames(out)
    assert len(frames) == 4
    assert np.abs(frames[0].astype(int) - recon.astype(int)).mean() < 2  # gif palette
    assert np.abs(frames[-1].astype(int) - frames[0].astype(int)).mean() > 2  # it moves
    record = json.loads((tmp_path / "clip.gif.json").read_text())
    start = record["start"]
    assert start["image"] == str(files["photo"]) and start["face"]["aligned"]
    assert start["latent"] == "clip_latent.npy" and start["psnr_db"] > 0
    assert len(start["face"]["landmarks"]) == 68
    # The inversion record is embedded in the saved crop too.
    meta = json.loads(Image.open(tmp_path / "clip_aligned.png").info["micromotion"])
    assert meta["generator_fingerprint"] == G.fingerprint()


def _gif_frames(path):
    with Image.open(path) as gif:
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB")))
    return np.stack(frames)


def one_error_line(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_apply_image_bad_inputs(files, tmp_path):
    base = ["--generator", files["gen"], "--steps", 2, "-o", tmp_path / "o.mp4"]
    Image.fromarray(np.full((80, 80, 3), 90, np.uint8)).save(tmp_path / "wall.png")
    one_error_line(
        run("apply", files["mm"], "--image", tmp_path / "wall.png", *base),
        "wall.png: no face found",
    )
    (tmp_path / "text.jpg").write_text("not an image")
    one_error_line(
        run("apply", files["mm"], "--image", tmp_path / "text.jpg", *base),
        "text.jpg: not a readable image",
    )
    tiny = Image.fromarray(skdata.astronaut()).resize((40, 40))
    tiny.save(tmp_path / "tiny.png")
    one_error_line(run("apply", files["mm"], "--image", tmp_path / "tiny.png", *base), "tiny.png")
    one_error_line(
        run("apply", files["mm"], "--image", files["photo"], "--seed", 1, *base),
        "exactly one of --image",
    )
    one_error_line(
        run("apply", files["mm"], "--seed", 1, "--face", 1, *base), "only apply to --image"
    )
    one_error_line(
        run("apply", files["mm"], "--image", files["photo"], "--face", 3, *base), "astronaut.jpg"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text.jpg", "tiny.png", "wall.png"]


def test_readme_command_defaults_to_ffhq_and_says_offline_clearly(
    files, tmp_path, closed_port, default_zoo
):
    """`micromotion apply smile --image PHOTO -o smile.mp4` with no network: one line."""
    for name in ("smile", "stylegan2-ffhq-1024"):
        entry = zoo.get(name)
        url = f"http://127.0.0.1:{closed_port}/{entry.filename}"
        default_zoo.unregister(entry.name)
        default_zoo.register(replace(entry, urls=(url,)))
    out = tmp_path / "smile.mp4"
    result = run("apply", "smile", "--image", files["photo"], "-o", out)
    one_error_line(result, "could not download smile")
    # With the direction in place, the next thing fetched is the FFHQ generator by default.
    from micromotion.cli import main

    help_text = CliRunner().invoke(main, ["apply", "--help"]).output
    assert "[default: ffhq]" in help_text
    assert not out.exists()
