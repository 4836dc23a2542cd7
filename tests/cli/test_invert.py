"""`micromotion invert` as a user runs it (with and without alignment), and image reading."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from helpers import tiny_generator
from micromotion import MicromotionError, save_generator
from micromotion.media.images import load_image, to_uint8


def run(*args):
    from micromotion.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inv")
    G = tiny_generator(7, img_resolution=16, channels=(12, 12, 8), z_dim=8, w_dim=8)
    g = torch.Generator().manual_seed(5)
    ws = G.mapping(torch.randn(2, G.z_dim, generator=g), truncation_psi=0.7).detach()
    # Like a trained network, keep images inside [-1, 1] so 8-bit files can hold them: the
    # image is linear in the ToRGB weights and biases (skip architecture), so scale those.
    with torch.no_grad():
        scale = 0.9 / G.synthesis(ws).abs().max()
        for name, p in G.named_parameters():
            if ".torgb." in name and not name.endswith(("affine.weight", "affine.bias")):
                p.mul_(scale)
    gen = save_generator(G, tmp / "g16.safetensors")
    with torch.no_grad():
        faces = to_uint8(G.synthesis(ws))
    return G, gen, faces, tmp


def test_invert_outputs(setup, tmp_path):
    G, gen, faces, _ = setup
    for i, face in enumerate(faces):
        Image.fromarray(face).save(tmp_path / f"face{i}.png")
    out = tmp_path / "out"
    result = run(
        "invert",
        tmp_path / "face0.png",
        tmp_path / "face1.png",
        "--generator",
        gen,
        "-o",
        out,
        "--steps",
        150,
        "--no-align",
        "--device",
        "cpu",
    )
    assert result.exit_code == 0, result.output
    for i in range(2):
        code = np.load(out / f"face{i}.npy")
        assert code.shape == (G.num_ws, G.w_dim) and code.dtype == np.float32
        meta = json.loads((out / f"face{i}.json").read_text())
        assert meta["psnr_db"] > 28 and meta["generator_fingerprint"] == G.fingerprint()
        assert meta["settings"]["steps"] == 150
        recon = np.asarray(Image.open(out / f"face{i}_recon.png"))
        with torch.no_grad():
            expected = to_uint8(G.synthesis(torch.from_numpy(code)[None]))[0]
        assert np.abs(recon.astype(int) - expected.astype(int)).max() <= 1
    # The code drives `apply` directly.
    from micromotion.subspace.micromotion import Micromotion

    mm = Micromotion(
        direction=torch.randn(G.num_ws, G.w_dim),
        mask=torch.ones(G.num_ws, dtype=torch.bool),
        metadata={"name": "m"},
    ).save(tmp_path / "m.safetensors")
    clip = run(
        "apply",
        mm,
        "--generator",
        gen,
        "--latent",
        out / "face0.npy",
        "--frames",
        3,
        "-o",
        tmp_path / "c.png",
    )
    assert clip.exit_code == 0, clip.output


def test_invert_partial_failure_and_errors(setup, tmp_path):
    _, gen, faces, _ = setup
    Image.fromarray(faces[0]).save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(tmp_path / "wide.png")
    out = tmp_path / "out"
    result = run(
        "invert",
        tmp_path / "good.png",
        tmp_path / "bad.png",
        tmp_path / "wide.png",
        "--generator",
        gen,
        "-o",
        out,
        "--steps",
        2,
        "--no-align",
    )
    assert result.exit_code == 1
    assert "bad.png: not a readable image" in result.stderr
    assert "wide.png: 24x16 is not square" in result.stderr
    assert "error: 2 of 3 images failed" in result.stderr
    assert (out / "good.npy").exists() and not (out / "bad.npy").exists()
    assert "Traceback" not in result.output
    both = run(
        "invert", tmp_path / "good.png", "--generator", gen, "-o", out, "--no-align", "--face", 1
    )
    assert both.exit_code == 1 and "--face needs alignment" in both.stderr
    dup = run(
        "invert",
        tmp_path / "good.png",
        tmp_path / "out" / "good.png",
        "--generator",
        gen,
        "-o",
        out,
        "--no-align",
    )
    assert dup.exit_code == 1 and "share the name 'good'" in dup.stderr


def test_load_image_modes(tmp_path):
    rgb = (np.random.default_rng(0).random((20, 20, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    ref = load_image(tmp_path / "rgb.png")
    assert ref.shape == (3, 20, 20) and ref.min() >= -1 and ref.max() <= 1
    # RGBA: transparent pixels become white.
    rgba = np.dstack([rgb, np.full((20, 20), 255, np.uint8)])
    rgba[0, 0, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    t = load_image(tmp_path / "rgba.png")
    assert torch.allclose(t[:, 0, 0], torch.ones(3)) and torch.allclose(t[:, 5, 5], ref[:, 5, 5])
    # 16-bit grayscale keeps its range.
    g16 = (np.linspace(0, 65535, 400).reshape(20, 20)).astype(np.uint16)
    Image.fromarray(g16).save(tmp_path / "g16.png")
    t = load_image(tmp_path / "g16.png")
    assert t.shape == (3, 20, 20) and t.min() == pytest.approx(-1) and t.max() == pytest.approx(1)
    # CMYK and EXIF orientation (rotated 90 degrees on display).
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    assert load_image(tmp_path / "cmyk.jpg").shape == (3, 20, 20)
    tall = Image.fromarray(np.zeros((30, 20, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    tall.save(tmp_path / "exif.jpg", exif=exif)
    assert load_image(tmp_path / "exif.jpg").shape == (3, 20, 30)
    # Resizing to a generator's resolution.
    assert load_image(tmp_path / "rgb.png", size=8).shape == (3, 8, 8)
    with pytest.raises(MicromotionError, match="no such file"):
        load_image(tmp_path / "none.png")


def test_invert_aligns_a_photo_first(setup, tmp_path):
    pytest.importorskip("dlib")
    skdata = pytest.importorskip("skimage.data")
    G, gen, _, _ = setup
    Image.fromarray(skdata.astronaut()).save(tmp_path / "astronaut.jpg")
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(tmp_path / "wall.png")
    out = tmp_path / "out"
    result = run(
        "invert",
        tmp_path / "astronaut.jpg",
        tmp_path / "wall.png",
        "--generator",
        gen,
        "-o",
        out,
        "--steps",
        3,
    )
    assert result.exit_code == 1
    assert "wall.png: no face found" in result.stderr
    assert "error: 1 of 2 images failed" in result.stderr
    assert not list(out.glob("wall*"))
    with Image.open(out / "astronaut_aligned.png") as aligned:
        assert aligned.size == (16, 16)
    record = json.loads((out / "astronaut.json").read_text())
    geometry = record["face"]
    assert geometry["aligned"] and geometry["face_index"] == 0
    # The transform takes the aligned crop's outer corners (pixel centres are at integers) to
    # the recorded quad in the photo.
    T = np.array(geometry["transform_aligned_to_original"])
    a, b = -0.5, 15.5
    corners = np.array([[a, a, 1], [a, b, 1], [b, b, 1], [b, a, 1]], float)
    mapped = (T @ corners.T).T
    np.testing.assert_allclose(mapped[:, :2] / mapped[:, 2:], geometry["quad"], atol=0.5)
    assert np.load(out / "astronaut.npy").shape == (G.num_ws, G.w_dim)


def test_invert_uses_lpips_once_its_weights_are_cached(setup, tmp_path, lpips_cached):
    """With both LPIPS files in the cache, `invert` picks LPIPS and reports the distance."""
    _, gen, faces, _ = setup
    Image.fromarray(faces[0]).save(tmp_path / "face.png")
    out = tmp_path / "out"
    result = run(
        "invert", tmp_path / "face.png", "--generator", gen, "-o", out, "--steps", 3, "--no-align"
    )
    assert result.exit_code == 0, result.output
    assert "LPIPS-VGG weights are not in the cache" not in result.output
    record = json.loads((out / "face.json").read_text())
    assert record["loss"].startswith("LPIPS-VGG")
    assert record["lpips"] > 0


def test_invert_warns_and_uses_pixel_loss_without_lpips(setup, tmp_path):
    _, gen, faces, _ = setup
    Image.fromarray(faces[0]).save(tmp_path / "face.png")
    out = tmp_path / "out"
    result = run(
        "invert", tmp_path / "face.png", "--generator", gen, "-o", out, "--steps", 2, "--no-align"
    )
    assert result.exit_code == 0, result.output
    assert "warning: LPIPS-VGG weights are not in the cache" in result.stderr
    record = json.loads((out / "face.json").read_text())
    assert record["loss"] == "multiscale pixel MSE" and record["lpips"] is None
