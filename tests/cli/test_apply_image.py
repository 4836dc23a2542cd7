"""`micromotion apply --image PHOTO`: align → invert → edit → render, as a user runs it."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from helpers import tiny_generator
from micromotion import hub as zoo
from micromotion import save_generator
from micromotion.media.images import to_uint8
from micromotion.media.video_in import read_video_frames
from micromotion.subspace.micromotion import Micromotion

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
    assert start["loss"] == "multiscale pixel MSE" and start["lpips"] is None  # not cached
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
    Image.fromarray(skdata.astronaut()).resize((64, 64)).save(tmp_path / "o_aligned.png")
    one_error_line(
        run("apply", files["mm"], "--image", tmp_path / "o_aligned.png", "--no-align", *base),
        "o_aligned.png: would be overwritten",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "o_aligned.png",
        "text.jpg",
        "tiny.png",
        "wall.png",
    ]


def test_readme_command_defaults_to_ffhq_and_says_offline_clearly(
    files, tmp_path, closed_port, default_zoo
):
    """`micromotion apply smile --image PHOTO -o smile.mp4` with no network: one line."""
    for name in ("smile", "stylegan2-ffhq-config-f"):
        entry = zoo.get(name)
        url = f"http://127.0.0.1:{closed_port}/{entry.filename}"
        default_zoo.unregister(entry.name)
        default_zoo.register(replace(entry, urls=(url,)))
    out = tmp_path / "smile.mp4"
    result = run("apply", "smile", "--image", files["photo"], "-o", out)
    # The direction ships in the package: what is missing is the FFHQ generator, the default.
    one_error_line(result, "could not download stylegan2-ffhq-config-f")
    from micromotion.cli import main

    help_text = CliRunner().invoke(main, ["apply", "--help"]).output
    assert "[default: ffhq]" in help_text
    assert not out.exists()


def test_paste_back_moves_only_the_face(files, tmp_path):
    out = tmp_path / "strip.png"
    result = run(
        "apply",
        files["mm"],
        "--image",
        files["photo"],
        "--generator",
        files["gen"],
        "--steps",
        5,
        "--frames",
        3,
        "--strength",
        3,
        "--paste-back",
        "-o",
        out,
    )
    assert result.exit_code == 0, result.output
    photo = np.asarray(Image.open(files["photo"]).convert("RGB")).astype(int)
    strip = np.asarray(Image.open(out).convert("RGB")).astype(int)
    h, w = photo.shape[:2]
    assert strip.shape == (h, 3 * w, 3)  # three whole photos side by side
    first, last = strip[:, :w], strip[:, 2 * w :]
    box = json.loads((tmp_path / "strip.png.json").read_text())["paste_back"]["box"]
    x0, y0, x1, y1 = box
    outside = np.ones((h, w), bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(first[outside], photo[outside])  # the photo itself, exactly
    assert np.array_equal(last[outside], photo[outside])
    face = (slice(y0, y1), slice(x0, x1))
    assert np.abs(last[face] - first[face]).mean() > 1  # the face moves
    assert np.abs(first[face] - photo[face]).mean() > 0  # the reconstruction is pasted in


def test_paste_back_round_trip_and_mask():
    """Pasting the aligned crop itself back reproduces the photo; nothing outside changes."""
    from micromotion.faces import align_image
    from micromotion.faces.pasteback import PasteBack

    photo = skdata.astronaut()
    face = align_image(photo, size=256)[0]
    paster = PasteBack(photo, face, 256)
    same = paster(face.image[None])[0]
    x0, y0, x1, y1 = paster.box
    inside = paster.mask[..., 0] > 0.99
    assert inside.mean() > 0.1  # the face and forehead (a seventh of the crop), not a sliver
    err = np.abs(same[y0:y1, x0:x1].astype(int) - photo[y0:y1, x0:x1].astype(int))
    assert err[inside].mean() < 3  # resampled twice, no more
    red = np.zeros_like(face.image)
    red[..., 0] = 255
    painted = paster(red[None])[0].astype(int)
    assert (np.abs(painted[y0:y1, x0:x1][inside] - [255, 0, 0]) <= 3).all()
    # The mask covers the face: the nose tip (landmark 30) is inside, the photo corners not.
    nx, ny = np.round(face.landmarks[30]).astype(int)
    assert paster.mask[ny - y0, nx - x0, 0] > 0.99
    assert np.array_equal(painted[:10, :10], photo[:10, :10])
    # Big photos are downscaled for video; even sizes for H.264.
    big = np.asarray(Image.fromarray(photo).resize((1001, 1001)))
    small = PasteBack(big, align_image(big, size=64)[0], 64, max_side=500)(
        np.zeros((1, 64, 64, 3), np.uint8)
    )
    assert small.shape == (1, 500, 500, 3)
