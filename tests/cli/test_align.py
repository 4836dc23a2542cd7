"""`micromotion align` as a user runs it: good photos, bad photos, odd file modes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from micromotion import faces as F


def run(*args):
    from micromotion.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def needs_dlib():
    pytest.importorskip("dlib")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(data.astronaut())  # [512, 512, 3] uint8


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut):
    """Input files, written once for the module."""
    d = tmp_path_factory.mktemp("photos")
    Image.fromarray(astronaut).save(d / "astro.png")
    Image.fromarray(np.full((96, 128, 3), 128, np.uint8)).save(d / "gray.png")
    noise = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    Image.fromarray(noise).save(d / "noise.png")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return d


def outputs(outdir):
    return sorted(p.name for p in outdir.iterdir()) if outdir.exists() else []


def test_one_photo(needs_dlib, photos, tmp_path):
    out = tmp_path / "out"
    result = run("align", photos / "astro.png", "-o", out, "--size", 128)
    assert result.exit_code == 0, result.output
    assert outputs(out) == ["astro.json", "astro.png"]
    meta = json.loads((out / "astro.json").read_text())
    assert meta["command"] == "align" and meta["size"] == 128 and meta["face_index"] == 0
    assert meta["detector"] == "hog" and len(meta["landmarks"]) == 68
    assert len(meta["image_sha256"]) == 64 and meta["micromotion_version"]
    with Image.open(out / "astro.png") as im:
        assert im.size == (128, 128) and im.mode == "RGB"
        assert json.loads(im.text["micromotion"])["quad"] == meta["quad"]
    # The sidecar's transform takes the crop's corners back onto the quad in the photo.
    M = np.array(meta["transform"])
    corners = np.array([[0, 0], [0, 128], [128, 128], [128, 0]], dtype=float) - 0.5
    np.testing.assert_allclose(F.map_points(M, corners), meta["quad"], atol=1e-9)


@pytest.mark.parametrize("bad", ["gray.png", "noise.png"])
def test_no_face_single(needs_dlib, photos, tmp_path, bad):
    out = tmp_path / "out"
    result = run("align", photos / bad, "-o", out, "--size", 64)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == [f"error: {photos / bad}: no face found"]
    assert outputs(out) == []


def test_mixed_good_and_bad(needs_dlib, photos, tmp_path):
    out = tmp_path / "out"
    missing = photos / "missing.png"
    result = run(
        "align",
        photos / "gray.png",
        photos / "astro.png",
        photos / "broken.png",
        missing,
        "-o",
        out,
        "--size",
        64,
        "--no-cnn",
    )
    assert result.exit_code == 1
    assert outputs(out) == ["astro.json", "astro.png"]
    assert result.stdout.strip().startswith("astro.png: face 0 (hog) -> ")
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed: ")]
    assert failed == [
        f"failed: {photos / 'gray.png'}: no face found",
        f"failed: {photos / 'broken.png'}: not a readable image"
        + failed[1].split("not a readable image", 1)[1],
        f"failed: {missing}: no such file",
    ]
    assert "\n" not in failed[1]
    assert result.stderr.strip().splitlines()[-1] == "error: 3 of 4 images failed"


def test_face_too_small(needs_dlib, astronaut, tmp_path):
    # The face's crop (174 px in the original) shrinks to 60 px: still detected (box ~36 px,
    # near HOG's limit with one upsampling) but under the 64 px minimum.
    Image.fromarray(astronaut).resize((180, 180), Image.LANCZOS).save(tmp_path / "small.png")
    out = tmp_path / "out"
    result = run("align", tmp_path / "small.png", "-o", out, "--size", 64)
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"error: {tmp_path / 'small.png'}: face too small (60 px")
    assert line.endswith("need at least 64 px")
    assert outputs(out) == []
    # Smaller still, nothing is detected at all (the CNN fallback included).
    Image.fromarray(astronaut).resize((48, 48), Image.LANCZOS).save(tmp_path / "tiny.png")
    result = run("align", tmp_path / "tiny.png", "-o", out, "--size", 64)
    assert result.exit_code == 1 and result.output.strip().endswith("tiny.png: no face found")
    # A lower --min-face accepts it.
    result = run("align", tmp_path / "small.png", "-o", out, "--size", 64, "--min-face", 48)
    assert result.exit_code == 0, result.output
    assert outputs(out) == ["small.json", "small.png"]


def test_file_modes(needs_dlib, astronaut, tmp_path):
    img = Image.fromarray(astronaut)
    rgba = img.convert("RGBA")
    rgba.putalpha(200)
    rgba.save(tmp_path / "rgba.png")
    img.convert("L").save(tmp_path / "gray8.png")
    gray16 = (np.asarray(img.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(gray16).save(tmp_path / "gray16.png")
    # Stored turned on its side; EXIF orientation 6 ("rotate 90 CW to view") sets it upright.
    exif = Image.Exif()
    exif[0x0112] = 6
    img.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "exif.jpg", exif=exif, quality=95)
    names = ["rgba", "gray8", "gray16", "exif"]
    files = [tmp_path / f"{n}.png" if n != "exif" else tmp_path / "exif.jpg" for n in names]
    out = tmp_path / "out"
    result = run("align", *files, "-o", out, "--size", 64, "--no-cnn")
    assert result.exit_code == 0, result.output
    assert outputs(out) == sorted(f"{n}.{ext}" for n in names for ext in ("json", "png"))
    # The EXIF photo's face is found upright, where it is in the astronaut photo.
    ref = F.detect_faces(astronaut)[0].box
    box = json.loads((out / "exif.json").read_text())["box"]
    assert np.abs(np.array(box) - ref).max() <= 3


def test_very_large_photo(needs_dlib, astronaut, tmp_path):
    # 4096 px: detection runs on a 1600 px copy, landmarks and the crop on the full image.
    big = Image.fromarray(astronaut).resize((4096, 4096), Image.BILINEAR)
    big.save(tmp_path / "big.png", compress_level=1)
    out = tmp_path / "out"
    result = run("align", tmp_path / "big.png", "-o", out, "--size", 64, "--no-cnn")
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "big.json").read_text())
    ref = F.ffhq_quad(F.detect_faces(astronaut)[0].landmarks)
    # Same face, same place: 8x the coordinates, within the landmark jitter.
    np.testing.assert_allclose(np.array(meta["quad"]) / 8, ref, atol=4)


def test_face_selection(needs_dlib, astronaut, tmp_path):
    pair = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)
    Image.fromarray(pair).save(tmp_path / "pair.png")
    out = tmp_path / "out"
    result = run("align", tmp_path / "pair.png", "-o", out, "--size", 64, "--all-faces")
    assert result.exit_code == 0, result.output
    assert outputs(out) == [
        "pair_face0.json",
        "pair_face0.png",
        "pair_face1.json",
        "pair_face1.png",
    ]
    boxes = [json.loads((out / f"pair_face{k}.json").read_text())["box"] for k in (0, 1)]
    assert boxes[0] != boxes[1]

    result = run("align", tmp_path / "pair.png", "-o", tmp_path / "o5", "--face", 5)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: {tmp_path / 'pair.png'}: face 5 requested but 2 faces found (0-1)"
    ]
    assert outputs(tmp_path / "o5") == []


def test_argument_errors_before_any_work(photos, tmp_path):
    out = tmp_path / "out"
    other = tmp_path / "x"
    other.mkdir()
    (other / "astro.png").write_bytes((photos / "astro.png").read_bytes())
    result = run("align", photos / "astro.png", other / "astro.png", "-o", out)
    assert result.exit_code == 1 and "share the name 'astro'" in result.output
    result = run("align", photos / "astro.png", "-o", out, "--face", 0, "--all-faces")
    assert result.exit_code == 1 and "not both" in result.output
    result = run("align", photos / "astro.png", "-o", photos)
    assert result.exit_code == 1 and "would be overwritten" in result.output
    assert outputs(out) == []


def test_tiny_and_thin_images_fail_cleanly(needs_dlib, photos, tmp_path):
    """dlib's CNN detector crashes on images under ~10 px a side: never reach it."""
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "tiny.png")
    Image.fromarray(np.full((40, 6000, 3), 90, np.uint8)).save(tmp_path / "banner.png")
    out = tmp_path / "out"
    result = run(
        "align",
        tmp_path / "tiny.png",
        tmp_path / "banner.png",
        photos / "astro.png",
        "-o",
        out,
        "--size",
        64,
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed: ")]
    assert failed == [
        f"failed: {tmp_path / 'tiny.png'}: no face found",
        f"failed: {tmp_path / 'banner.png'}: no face found",
    ]
    assert outputs(out) == ["astro.json", "astro.png"]
