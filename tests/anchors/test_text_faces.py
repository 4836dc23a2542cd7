"""Text anchors of several faces, and `discover text --seeds`: one joint micromotion."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from helpers import TINY_CLIP, tiny_clip_module, tiny_generator
from micromotion import MicromotionError, save_generator
from micromotion.anchors.text import TextAnchorConfig, multi_text_anchors, text_anchors
from micromotion.media.images import STRIP_HEIGHT
from micromotion.networks.clip import ClipModel
from micromotion.networks.sampling import sample_ws
from micromotion.pipelines.discover import Decomposition, discover_latents, discover_text
from micromotion.pipelines.outputs import LABEL_BAND
from micromotion.weights.micromotion import load_micromotion

DEGREES = ("no", "50%", "100%")


@pytest.fixture(scope="module")
def G():
    return tiny_generator(0)


@pytest.fixture(scope="module")
def files(tmp_path_factory, G):
    tmp = tmp_path_factory.mktemp("faces")
    gen = save_generator(G, tmp / "g.safetensors")
    cfg = tmp / "tiny-clip.json"
    cfg.write_text(json.dumps(TINY_CLIP))
    weights = tmp / "tiny-clip.pt"
    torch.save(tiny_clip_module(1).state_dict(), weights)
    return {"generator": gen, "clip": f"{cfg}:{weights}"}


def run(*args):
    from micromotion.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_faces_at_once_equal_one_face_at_a_time(G):
    clip = ClipModel(tiny_clip_module(), spec="tiny")
    config = TextAnchorConfig(degrees=DEGREES, steps=6)
    many = multi_text_anchors(G, clip, seeds=[3, 1], config=config)
    assert many.anchors.shape == (2, 4, G.num_ws, G.w_dim)
    assert many.images.shape == (2, 4, 32, 32, 3) and many.clip_loss.shape == (2, 3)
    for f, seed in enumerate([3, 1]):
        alone = text_anchors(G, clip, config=TextAnchorConfig(degrees=DEGREES, steps=6, seed=seed))
        torch.testing.assert_close(many.anchors[f], alone.anchors, atol=2e-5, rtol=1e-4)
        torch.testing.assert_close(many.clip_loss[f], alone.clip_loss, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(many.start_clip_loss[f], alone.start_clip_loss)
    # Batches of codes that split a face give the same codes.
    small = multi_text_anchors(
        G, clip, seeds=[3, 1], config=TextAnchorConfig(degrees=DEGREES, steps=6, batch_size=2)
    )
    torch.testing.assert_close(small.anchors, many.anchors, atol=2e-5, rtol=1e-4)
    starts = sample_ws(G, [3, 1])
    torch.testing.assert_close(many.anchors[:, 0], starts)
    with pytest.raises(MicromotionError, match="one of the two"):
        multi_text_anchors(G, clip, config=config)
    with pytest.raises(MicromotionError, match="start codes"):
        multi_text_anchors(G, clip, start_ws=starts[0], config=config)


def test_one_seed_list_is_the_one_face_discovery(files, tmp_path):
    common = {
        "generator": files["generator"], "clip": files["clip"], "device": "cpu",
        "config": TextAnchorConfig(degrees=DEGREES, steps=4, seed=2),
    }  # fmt: skip
    one = discover_text(output=tmp_path / "one.safetensors", **common)
    listed = discover_text(output=tmp_path / "list.safetensors", seeds=[2], **common)
    assert torch.equal(listed.micromotion.direction, one.micromotion.direction)
    assert torch.equal(listed.anchors[0], one.anchors)
    assert listed.transfer is not None and listed.transfer["cosine"] == pytest.approx(1.0)
    assert listed.transfer["improvement"]["clip_gain"] == 0


def test_discover_text_seeds_cli(files, G, tmp_path):
    out = tmp_path / "joint.safetensors"
    result = run(
        "discover", "text", "--template", "a person with {degree} smile",
        "--generator", files["generator"], "--clip", files["clip"], "--seeds", "1-3",
        "--degrees", ",".join(DEGREES), "--steps", 4, "--method", "endpoints",
        "--device", "cpu", "-o", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "transfer to 4 held-out faces" in result.stdout and "cosine" in result.stdout
    mm = load_micromotion(out)
    meta = mm.metadata
    assert meta["seeds"] == [1, 2, 3] and meta["seed"] is None and meta["method"] == "endpoints"
    assert meta["num_faces"] == 3 and meta["anchors_per_face"] == 4
    assert meta["center"] == "per-face" and mm.anchors.shape == (12, G.num_ws, G.w_dim)
    anchors = np.load(out.with_name("joint_anchors.npy"))
    assert anchors.shape == (3, 4, G.num_ws, G.w_dim)
    np.testing.assert_allclose(anchors[:, 0], sample_ws(G, [1, 2, 3]).numpy())
    record = json.loads(out.with_name("joint.json").read_text())
    assert record["seeds"] == [1, 2, 3] and record["start"]["seeds"] == [1, 2, 3]
    assert record["settings"]["seeds"] == [1, 2, 3] and record["settings"]["seed"] is None
    transfer = record["transfer"]
    assert transfer["held_out"] == [4, 5, 6, 7] == record["held_out"]
    assert len(transfer["joint"]["clip_gain_per_face"]) == 4 and "identity" not in transfer["joint"]
    assert -1 <= transfer["cosine"] <= 1 and len(transfer["cosine_per_face"]) == 3
    assert transfer["strength"]["single_face"] == 1.0
    assert np.array(record["clip_loss_final"]).shape == (3, 3)
    strip = Image.open(out.with_name("joint_strip.png"))
    # 3 rows of 4 tiles, each row with its degrees under it and its seed in a column left.
    width, height = strip.size
    assert height == 3 * (STRIP_HEIGHT + LABEL_BAND) and width > 4 * STRIP_HEIGHT
    gutter = np.asarray(strip.convert("RGB"))[:, : width - 4 * STRIP_HEIGHT]
    rows = [gutter[r * (STRIP_HEIGHT + LABEL_BAND) :][:STRIP_HEIGHT] for r in range(3)]
    assert all(row.max() > 200 for row in rows)  # "seed 1", "seed 2", "seed 3"
    assert not np.array_equal(rows[0], rows[1])
    # `discover latents` on the saved [F, n, …] anchors decodes the same joint micromotion.
    again = discover_latents(
        out.with_name("joint_anchors.npy"),
        output=tmp_path / "again.safetensors",
        decomposition=Decomposition(method="endpoints"),
    )
    torch.testing.assert_close(again.micromotion.direction, mm.direction)


def _assert_user_error(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--seeds", "1-3", "--latent", "w.npy"], ["--seeds", "only one"]),
        (["--seeds", "1-3", "--seed", "2"], ["--seeds", "only one"]),
        (["--seeds", ""], ["--seeds", "empty item"]),
        (["--seeds", "0-99"], ["--seeds", "100 faces: at most 64"]),
        (["--seeds", "x"], ["--seeds", "not a seed"]),
        (["--seeds", "1-3", "--held-out", "3,9"], ["--held-out", "3: also a training seed"]),
        (["--seeds", "1-3", "--held-out", "9-"], ["--held-out"]),
        (["--held-out", "9"], ["--held-out", "--seeds"]),
    ],
)
def test_discover_text_seeds_bad_input(files, tmp_path, args, fragments):
    out = tmp_path / "bad.safetensors"
    result = run(
        "discover", "text", "--template", "{degree} smile", "--generator", files["generator"],
        "--clip", files["clip"], "--degrees", "no,100%", "--steps", 2, *args, "-o", out,
    )  # fmt: skip
    _assert_user_error(result, *fragments)
    assert not list(tmp_path.iterdir())
