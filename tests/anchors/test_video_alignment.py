"""Video anchors with the paper's alignment: the encoder sees the paper code's 256 px crops."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from skimage import data

from encoder_ckpt_writer import write_encoder_checkpoint
from helpers import write_lossless_mp4
from micromotion.anchors.video import VideoAnchorConfig, video_anchors
from micromotion.errors import ParameterError
from micromotion.faces import align_face, detect_faces
from micromotion.inversion import encoder as encoder_module
from micromotion.media.images import from_uint8
from micromotion.media.video_in import read_video_frames
from micromotion.weights.encoders import load_encoder
from micromotion.weights.generator import load_generator


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("paper-video")
    ckpt = write_encoder_checkpoint(tmp / "restyle.pt", "BackboneEncoder", seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        G = load_generator(ckpt)
    encoder = load_encoder(ckpt)
    # A still face filmed for four frames: its smoothed landmarks are its own landmarks.
    write_lossless_mp4(tmp / "still.mp4", np.stack([data.astronaut()] * 4))
    return G, encoder, tmp / "still.mp4"


def test_the_encoder_sees_the_paper_crop_and_the_projector_ours(setup, monkeypatch):
    G, encoder, clip = setup
    seen = []
    real = encoder_module.encode

    def spy(G, model, inputs, **kwargs):
        seen.append(inputs.clone())
        return real(G, model, inputs, **kwargs)

    monkeypatch.setattr(encoder_module, "encode", spy)
    config = VideoAnchorConfig(frames=4, min_frames=3)
    papers = video_anchors(G, clip, config=config, encoder=encoder, iterations=1,
                           alignment="paper")  # fmt: skip
    ours = video_anchors(G, clip, config=config, encoder=encoder, iterations=1)
    frame = read_video_frames(clip)[0]
    marks = detect_faces(frame)[0].landmarks
    expected = from_uint8(align_face(frame, marks, size=256, transform_size=256).image)
    assert seen[0].shape == (4, 3, 256, 256)
    torch.testing.assert_close(seen[0][0], expected)  # the recipe straight to 256 px
    assert not torch.equal(seen[0], seen[1])  # ours: the 64 px crop, averaged up to 256
    # The crops that are inverted against and reported are ours in both cases.
    assert np.array_equal(papers.aligned, ours.aligned) and papers.aligned.shape[1] == 64
    assert not torch.equal(papers.anchors, ours.anchors)


def test_the_paper_alignment_needs_alignment(setup):
    G, encoder, clip = setup
    with pytest.raises(ParameterError, match="alignment paper redoes the alignment"):
        video_anchors(G, clip, align=False, encoder=encoder, alignment="paper")
    with pytest.raises(ParameterError, match="choose ours or paper"):
        video_anchors(G, clip, encoder=encoder, alignment="theirs")  # type: ignore[arg-type]


def test_discover_video_alignment_paper_on_the_command_line(setup, tmp_path):
    import json

    from click.testing import CliRunner

    from micromotion.cli import main

    _, _, still = setup
    ckpt = still.parent / "restyle.pt"
    # A face that moves a little (the still clip has no motion to decode).
    clip = tmp_path / "moving.mp4"
    write_lossless_mp4(clip, np.stack([np.roll(data.astronaut(), 3 * i, axis=1) for i in range(4)]))

    def run(*args):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return CliRunner().invoke(main, ["discover", "video", *map(str, args)])

    common = (clip, "--generator", ckpt, "--inverter", ckpt, "--iterations", 1, "--frames", 4)
    out = tmp_path / "paper.safetensors"
    result = run(*common, "--alignment", "paper", "--rank", 2, "-o", out)
    assert result.exit_code == 0, result.output
    record = json.loads(out.with_name("paper.json").read_text())
    assert record["inverter"]["alignment"] == "paper"
    bad = run(*common, "--alignment", "paper", "--no-align", "-o", tmp_path / "b.safetensors")
    assert bad.exit_code == 1 and "--alignment paper redoes the alignment" in bad.stderr
    assert not list(tmp_path.glob("b*"))


def test_a_clip_checks_the_encoders_generator_once_not_per_batch(setup, tmp_path):
    from encoder_ckpt_writer import decoder
    from micromotion.anchors.video import ENCODER_BATCH
    from micromotion.media.images import to_uint8

    _, encoder, _ = setup
    other = decoder(seed=11)  # same size as the encoder's network, another network
    frames = ENCODER_BATCH + 2  # two batches through the encoder
    codes = other.w_avg[None, None].repeat(frames, other.num_ws, 1)
    codes = codes + 0.3 * torch.randn(codes.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        write_lossless_mp4(tmp_path / "c.mp4", to_uint8(other.synthesis(codes, noise_mode="const")))
    config = VideoAnchorConfig(frames=frames, min_frames=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        video_anchors(other, tmp_path / "c.mp4", config=config, align=False, encoder=encoder,
                      iterations=1)  # fmt: skip
    mismatch = [w for w in caught if "trained with another generator" in str(w.message)]
    assert len(mismatch) == 1
