"""`evaluate --compare ... --image PHOTO`: SeFa and GANSpace against a micromotion, on photos."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from encoder_ckpt_writer import write_encoder_checkpoint
from micromotion.subspace.micromotion import Micromotion

pytest.importorskip("dlib")  # photos are aligned
skdata = pytest.importorskip("skimage.data")


def run(*args):
    from micromotion.cli import main

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny random networks saturate; not under test
        return CliRunner().invoke(main, [str(a) for a in args])


def one_error_line(result, *fragments):
    assert result.exit_code != 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny ReStyle checkpoint (its decoder is the generator), two photos, a micromotion."""
    tmp = tmp_path_factory.mktemp("evaluate_photos")
    ckpt = write_encoder_checkpoint(tmp / "restyle.pt", "BackboneEncoder", seed=3)
    astronaut = skdata.astronaut()
    Image.fromarray(astronaut).save(tmp / "a.png")
    Image.fromarray(np.ascontiguousarray(astronaut[:, ::-1])).save(tmp / "b.png")  # mirrored
    g = torch.Generator().manual_seed(2)
    t = torch.linspace(0, 1, 6)[:, None, None]
    anchors = 0.3 * torch.randn(1, 10, 512, generator=g) + t * torch.randn(1, 10, 512, generator=g)
    mm = Micromotion.from_anchors(anchors, rank=2, name="planted").save(tmp / "mm.safetensors")
    return {"ckpt": ckpt, "a": tmp / "a.png", "b": tmp / "b.png", "mm": mm, "dir": tmp}


COMMON = ("--frames", 4, "--ganspace-samples", 500, "--device", "cpu")


def test_compare_against_baselines_on_photos_in_one_command(files, tmp_path):
    out = tmp_path / "cmp.json"
    result = run(
        "evaluate", "--compare", files["mm"], "sefa:0", "ganspace:1",
        "--generator", files["ckpt"], "--inverter", files["ckpt"],
        "--image", files["a"], "--image", files["b"], "--strength", 1, "--strength", 3,
        "--strength", 2, *COMMON, "--plot", tmp_path / "cmp.png", "-o", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3 micromotions: planted, sefa:0, ganspace:1; 2 face(s)" in result.output
    report = json.loads(out.read_text())
    starts = report["starts"]
    assert [s["image"] for s in starts] == [str(files["a"]), str(files["b"])]
    for start in starts:
        assert start["inverter"]["method"] == "restyle-psp" and start["aligned"] is True
        assert start["inverter"]["iterations"] == 5 and np.isfinite(start["psnr_db"])
        assert len(start["image_sha256"]) == 64
    assert starts[0]["image_sha256"] != starts[1]["image_sha256"]
    assert [len(m["per_start"]) for m in report["micromotions"]] == [2, 2, 2]
    assert (tmp_path / "cmp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The same faces as codes: `invert` with the same inverter, then --latent, score the same.
    codes = tmp_path / "codes"
    inv = run("invert", files["a"], files["b"], "--generator", files["ckpt"],
              "--inverter", files["ckpt"], "--device", "cpu", "-o", codes)  # fmt: skip
    assert inv.exit_code == 0, inv.output
    stacked = np.stack([np.load(codes / "a.npy"), np.load(codes / "b.npy")])
    np.save(tmp_path / "faces.npy", stacked)
    again = run(
        "evaluate", "--compare", files["mm"], "sefa:0", "ganspace:1",
        "--generator", files["ckpt"], "--latent", tmp_path / "faces.npy", "--strength", 1,
        "--strength", 3, "--strength", 2, *COMMON, "-o", tmp_path / "latent.json",
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    by_latent = json.loads((tmp_path / "latent.json").read_text())
    for photos, latents in zip(report["micromotions"], by_latent["micromotions"], strict=True):
        assert photos["label"] == latents["label"]
        for p, q in zip(photos["per_start"], latents["per_start"], strict=True):
            assert p["smoothness"]["pixel_rmse"]["mean"] == pytest.approx(
                q["smoothness"]["pixel_rmse"]["mean"], rel=1e-4, abs=1e-6
            )


def test_single_evaluate_on_a_photo(files, tmp_path):
    out = tmp_path / "one.json"
    result = run("evaluate", files["mm"], "--generator", files["ckpt"], "--inverter",
                 files["ckpt"], "--image", files["a"], *COMMON, "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["start"]["image"] == str(files["a"])
    assert report["start"]["psnr_db"] > 0


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("--inverter", "projector"), ("--inverter goes with --image",)),
        (("--image", "A", "--seeds", "0-1", "--compare"), ("--image", "--seeds", "one of them")),
        (("--image", "A", "--seed", "3"), ("--image and --seed",)),
        (("--image", "A", "--image", "A", "--compare"), ("a photo is given twice",)),
        (("--image", "A", "--image", "B"), ("--compare is needed",)),
        (("--image", "missing.png"), ("missing.png",)),
    ],
)
def test_bad_photo_options_are_one_line(files, tmp_path, args, fragments):
    args = tuple(str(files[a.lower()]) if a in ("A", "B") else a for a in args)
    out = tmp_path / "x.json"
    result = run("evaluate", files["mm"], *args, "--generator", files["ckpt"], "--device", "cpu",
                 "-o", out)  # fmt: skip
    one_error_line(result, *fragments)
    assert not out.exists()


def test_a_photo_without_a_face_fails_before_any_rendering(files, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (128, 128), (90, 90, 90)).save(blank)
    out = tmp_path / "x.json"
    result = run("evaluate", "--compare", files["mm"], "sefa", "--generator", files["ckpt"],
                 "--inverter", files["ckpt"], "--image", files["a"], "--image", blank,
                 *COMMON, "-o", out)  # fmt: skip
    one_error_line(result, str(blank), "face")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blank.png"]
