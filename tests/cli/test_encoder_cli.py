"""invert and apply with an encoder: ReStyle iterations, refinement, records, offline help."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from encoder_ckpt_writer import write_encoder_checkpoint
from micromotion import hub, load_generator
from micromotion.cli import main
from micromotion.media.images import to_uint8


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("enc")
    ckpt = write_encoder_checkpoint(tmp / "restyle.pt", "BackboneEncoder", seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        G = load_generator(ckpt)
    w = G.w_avg[None, None].repeat(1, G.num_ws, 1) + 0.5 * torch.randn(1, G.num_ws, G.w_dim)
    with torch.no_grad():
        face = to_uint8(G.synthesis(w, noise_mode="const"))[0]
    Image.fromarray(face).save(tmp / "face.png")
    return {"ckpt": ckpt, "face": tmp / "face.png"}


def run(*args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CliRunner().invoke(main, [str(a) for a in args])


def test_invert_with_restyle_records_every_iteration(files, tmp_path):
    result = run("invert", files["face"], "--no-align", "--generator", files["ckpt"],
                 "--inverter", files["ckpt"], "--iterations", 3, "-o", tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "face.json").read_text())
    used = record["inverter"]
    assert used["method"] == "restyle-psp" and used["iterations"] == 3 and used["refine"] == 0
    assert len(used["psnr_db_per_iteration"]) == 3
    assert used["encoder"]["encoder_type"] == "BackboneEncoder"
    assert np.load(tmp_path / "face.npy").shape == (10, 512)


def test_refinement_continues_from_the_encoder(files, tmp_path):
    result = run("invert", files["face"], "--no-align", "--generator", files["ckpt"],
                 "--inverter", files["ckpt"], "--iterations", 2, "--refine", 4,
                 "-o", tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    used = json.loads((tmp_path / "face.json").read_text())["inverter"]
    assert used["refine"] == 4 and len(used["psnr_db_per_iteration"]) == 2
    bad = run("invert", files["face"], "--no-align", "--generator", files["ckpt"],
              "--inverter", files["ckpt"], "--refine", 1, "-o", tmp_path / "b")  # fmt: skip
    assert bad.exit_code == 1 and "--refine 1" in bad.stderr


def test_apply_with_an_encoder(files, tmp_path):
    out = tmp_path / "clip.png"
    mm = tmp_path / "d.safetensors"
    from micromotion.subspace.micromotion import Micromotion

    Micromotion(direction=torch.randn(10, 512), mask=torch.ones(10, dtype=torch.bool),
                metadata={"name": "d"}).save(mm)  # fmt: skip
    result = run("apply", mm, "--image", files["face"], "--no-align", "--generator",
                 files["ckpt"], "--inverter", files["ckpt"], "--iterations", 2,
                 "--frames", 3, "--strength", 0.5, "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(out.with_name("clip.png.json").read_text())
    assert record["start"]["inverter"]["method"] == "restyle-psp"


def test_an_encoder_for_another_generator_is_one_line(files, tmp_path):
    from helpers import tiny_generator
    from micromotion import save_generator

    gen = save_generator(tiny_generator(0), tmp_path / "g.safetensors")
    result = run("invert", files["face"], "--no-align", "--generator", gen,
                 "--inverter", files["ckpt"], "-o", tmp_path / "o")  # fmt: skip
    assert result.exit_code == 1
    assert "trained for another network size" in result.stderr


def test_offline_the_encoder_is_named_with_the_way_on(files, tmp_path, default_zoo, closed_port):
    entry = hub.get("restyle-psp-ffhq")
    default_zoo.unregister(entry.name)
    default_zoo.register(replace(entry, urls=(f"http://127.0.0.1:{closed_port}/r.pt",)))
    result = run("invert", files["face"], "--no-align", "--generator", files["ckpt"],
                 "--inverter", "restyle-psp-ffhq", "-o", tmp_path / "o")  # fmt: skip
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1, result.stderr
    assert "--inverter restyle-psp-ffhq: could not download restyle-psp-ffhq" in lines[0]
    assert lines[0].endswith("to go on without it: --inverter projector")


def test_auto_is_the_papers_inverter_for_the_papers_network_only(tmp_path):
    from micromotion.pipelines.photo import PAPER_INVERTER, PROJECTOR, choose_inverter

    assert choose_inverter("auto", "ffhq") == PAPER_INVERTER == "restyle-psp-ffhq"
    assert choose_inverter("auto", "stylegan2-ffhq-config-f") == PAPER_INVERTER
    assert choose_inverter("auto", "ffhq-rosinality") == PAPER_INVERTER  # the same network
    assert choose_inverter("auto", "stylegan2-ffhq-config-f-rosinality") == PAPER_INVERTER
    assert choose_inverter("auto", "stylegan2-ffhq-1024") == PROJECTOR  # not the paper's
    assert choose_inverter("auto", str(tmp_path / "mine.pkl")) == PROJECTOR
    assert choose_inverter("e4e-ffhq", "ffhq") == "e4e-ffhq"


def test_discover_video_through_the_encoder(files, tmp_path):
    from helpers import write_lossless_mp4

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        G = load_generator(files["ckpt"])
    g = torch.Generator().manual_seed(5)
    w0 = G.w_avg[None].repeat(G.num_ws, 1) + 0.5 * torch.randn(G.num_ws, G.w_dim, generator=g)
    d = torch.randn(G.num_ws, G.w_dim, generator=g)
    codes = torch.stack([w0 + t * d for t in torch.linspace(0, 1, 4)])
    with torch.no_grad():
        frames = to_uint8(G.synthesis(codes, noise_mode="const"))
    write_lossless_mp4(tmp_path / "clip.mp4", frames)
    out = tmp_path / "v.safetensors"
    result = run("discover", "video", tmp_path / "clip.mp4", "--no-align", "--generator",
                 files["ckpt"], "--inverter", files["ckpt"], "--iterations", 2, "--frames", 4,
                 "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(out.with_name("v.json").read_text())
    assert record["inverter"]["method"] == "restyle-psp" and record["inverter"]["iterations"] == 2
    assert len(record["psnr_db"]) == 4 and np.load(out.with_name("v_anchors.npy")).shape[0] == 4


def test_the_papers_alignment_feeds_the_encoder_its_own_256_px_crop(files, tmp_path):
    from skimage import data as skdata

    from micromotion.faces import align_image
    from micromotion.pipelines.photo import FaceCrop, paper_crop

    photo = skdata.astronaut()
    Image.fromarray(photo).save(tmp_path / "astronaut.png")
    aligned = align_image(photo, size=64)[0]
    crop = paper_crop(FaceCrop(aligned.image, {}, photo, aligned))
    assert crop is not None and crop.shape == (256, 256, 3)
    direct = align_image(photo, size=256, transform_size=256)[0].image
    assert np.array_equal(crop, direct)  # the recipe straight to 256 px, as the paper's code
    for alignment in ("paper", "ours"):
        out = tmp_path / alignment
        result = run("invert", tmp_path / "astronaut.png", "--generator", files["ckpt"],
                     "--inverter", files["ckpt"], "--iterations", 1, "--alignment", alignment,
                     "-o", out)  # fmt: skip
        assert result.exit_code == 0, result.output
        record = json.loads((out / "astronaut.json").read_text())
        assert record["inverter"]["alignment"] == alignment
    codes = [np.load(tmp_path / a / "astronaut.npy") for a in ("paper", "ours")]
    assert not np.array_equal(*codes)  # the encoder saw different crops
    bad = run("invert", files["face"], "--no-align", "--generator", files["ckpt"], "--inverter",
              files["ckpt"], "--alignment", "paper", "-o", tmp_path / "b")  # fmt: skip
    assert bad.exit_code == 1 and "--alignment paper redoes the alignment" in bad.stderr
