"""Text anchors with a tiny random CLIP: prompts, CLIP input, optimisation, `discover text`."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torch.nn import functional as F

from helpers import TINY_CLIP, tiny_clip_module, tiny_generator
from micromotion import MicromotionError, save_generator
from micromotion.anchors.text import (
    DEFAULT_DEGREES,
    TextAnchorConfig,
    format_prompts,
    lr_at,
    parse_degrees,
    text_anchors,
)
from micromotion.media.images import STRIP_HEIGHT
from micromotion.networks.clip import ClipModel, resize_for_clip
from micromotion.networks.irse import IRSE, IdentityLoss
from micromotion.networks.sampling import sample_ws
from micromotion.pipelines.outputs import LABEL_BAND
from micromotion.weights.clip import load_clip, parse_clip_spec
from micromotion.weights.micromotion import load_micromotion

DEGREES = ("no", "30%", "60%", "100%")


@pytest.fixture(scope="module")
def clip() -> ClipModel:
    return ClipModel(tiny_clip_module(), spec="tiny")


@pytest.fixture(scope="module")
def G():
    return tiny_generator(0)


def run(*args):
    from micromotion.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_user_error(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# --- prompts ---------------------------------------------------------------------------------


def test_format_prompts_is_literal():
    assert format_prompts("a person with {degree} smile", ["no", "10%"]) == [
        "a person with no smile",
        "a person with 10% smile",
    ]
    # Other braces, format specs and Python are text, never evaluated or formatted.
    template = "{degree} __import__('os').system('x') {other} {{}} {0} {degree!r:>5}"
    assert format_prompts(template, ["50%"]) == [
        "50% __import__('os').system('x') {other} {{}} {0} {degree!r:>5}"
    ]
    with pytest.raises(MicromotionError, match=r"\{degree\}"):
        format_prompts("a person smiling", ["no"])
    with pytest.raises(MicromotionError):
        format_prompts("{degree}", [])
    assert parse_degrees(" no, 50% ,100%") == ("no", "50%", "100%")
    with pytest.raises(MicromotionError):
        parse_degrees("no,,100%")


def test_config_defaults_are_the_papers():
    cfg = TextAnchorConfig()
    assert cfg.degrees == DEFAULT_DEGREES and cfg.degrees[0] == "no" and len(cfg.degrees) == 11
    assert (cfg.steps, cfg.lr, cfg.l2_lambda, cfg.id_lambda) == (40, 0.1, 0.008, 0.005)
    assert (cfg.truncation_psi, cfg.seed, cfg.noise_mode, cfg.clip_normalize) == (
        0.7,
        1,
        "const",
        True,  # CLIP's own input normalisation; --paper-clip-input turns it off
    )
    # StyleCLIP's get_lr: zero at step 0, full rate mid-run, cosine to ~0 at the end.
    assert lr_at(0, cfg) == 0 and lr_at(10, cfg) == pytest.approx(0.1)
    assert lr_at(39, cfg) == pytest.approx(0.1 * (0.5 - 0.5 * math.cos(math.pi * 0.025 / 0.25)))
    with pytest.raises(MicromotionError):
        TextAnchorConfig(steps=0)


# --- CLIP input ------------------------------------------------------------------------------


@pytest.mark.parametrize("resolution", [32, 64])
def test_resize_matches_styleclip(resolution):
    """StyleCLIP: Upsample(scale_factor=7) then AvgPool2d(R // 32) -> 224 px."""
    x = torch.randn(2, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    expected = F.avg_pool2d(F.interpolate(x, scale_factor=7, mode="nearest"), resolution // 32)
    got = resize_for_clip(x, 224)
    assert got.shape == (2, 3, 224, 224)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # Downsampling is plain area averaging.
    torch.testing.assert_close(resize_for_clip(x, resolution // 2), F.avg_pool2d(x, 2))


def test_clip_embeddings(clip):
    img = torch.rand(2, 3, 32, 32, requires_grad=True)
    raw = clip.preprocess(img * 2 - 1, normalize=False)
    assert raw.shape == (2, 3, 64, 64)
    norm = clip.preprocess(img * 2 - 1)
    mean = torch.tensor(clip.mean).view(1, 3, 1, 1)
    std = torch.tensor(clip.std).view(1, 3, 1, 1)
    torch.testing.assert_close(norm, ((raw + 1) / 2 - mean) / std)
    emb = clip.image_embeds(img * 2 - 1)
    assert emb.shape == (2, 16)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2))
    emb.sum().backward()
    assert img.grad is not None and img.grad.abs().sum() > 0
    text = clip.text_embeds(["a person with no smile", "a person with 100% smile"])
    assert text.shape == (2, 16) and not text.requires_grad
    assert not torch.allclose(text[0], text[1])
    assert not any(p.requires_grad for p in clip.model.parameters())


def test_clip_spec_errors(tmp_path):
    with pytest.raises(MicromotionError, match="MODEL:WEIGHTS"):
        parse_clip_spec("ViT-B-32")
    with pytest.raises(MicromotionError, match="unknown open_clip model"):
        load_clip("NoSuchNet:openai")
    with pytest.raises(MicromotionError, match="not a weights file or a pretrained tag"):
        load_clip("ViT-B-32:nosuchtag")
    with pytest.raises(MicromotionError, match="no such file"):
        load_clip(f"ViT-B-32:{tmp_path / 'missing.bin'}")
    # Weights that do not fit the architecture: one line naming the file.
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY_CLIP))
    bad = tmp_path / "bad.pt"
    torch.save({"logit_scale": torch.zeros(())}, bad)
    with pytest.raises(MicromotionError, match="bad.pt: not usable CLIP weights") as info:
        load_clip(f"{cfg}:{bad}")
    assert "\n" not in str(info.value)
    # Broken files fail inside open_clip and safetensors in other ways: still one line.
    (tmp_path / "broken.safetensors").write_bytes(b"\xff" * 64)
    torch.save({}, tmp_path / "empty.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    for name in ("broken.safetensors", "empty.pt", "list.pt"):
        with pytest.raises(MicromotionError, match=f"{name}: not usable CLIP weights") as info:
            load_clip(f"{cfg}:{tmp_path / name}")
        assert "\n" not in str(info.value)


# --- optimisation ----------------------------------------------------------------------------


def test_anchors_move_and_match_the_prompts(G, clip):
    flags = [p.requires_grad for p in G.parameters()]
    config = TextAnchorConfig(degrees=DEGREES, steps=20)
    steps_seen = []
    result = text_anchors(G, clip, config=config, callback=lambda s, _: steps_seen.append(s))
    n = len(DEGREES) + 1
    assert result.anchors.shape == (n, G.num_ws, G.w_dim)
    assert result.images.shape == (n, 32, 32, 3) and result.images.dtype == np.uint8
    assert result.prompts == format_prompts(config.template, DEGREES)
    assert steps_seen == list(range(1, 21))
    # Anchor 0 is the start face: seed 1 at truncation 0.7.
    torch.testing.assert_close(result.anchors[0], sample_ws(G, [1], truncation_psi=0.7)[0])
    dist = (result.anchors[1:] - result.anchors[:1]).flatten(1).norm(dim=1)
    assert (dist > 0.1).all(), dist
    # Every code moved toward its own prompt: its CLIP loss fell.
    assert (result.clip_loss < result.start_clip_loss - 0.01).all()
    assert [p.requires_grad for p in G.parameters()] == flags
    assert not any(p.requires_grad for p in clip.model.parameters())


def test_batched_equals_one_at_a_time(G, clip):
    config = TextAnchorConfig(degrees=DEGREES, steps=15)
    batched = text_anchors(G, clip, config=config)
    single = text_anchors(G, clip, config=TextAnchorConfig(degrees=DEGREES, steps=15, batch_size=1))
    torch.testing.assert_close(batched.anchors, single.anchors, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(batched.clip_loss, single.clip_loss, atol=1e-5, rtol=1e-4)
    # And a prompt's code does not depend on which other prompts share its batch.
    alone = text_anchors(G, clip, config=TextAnchorConfig(degrees=DEGREES[2:3], steps=15))
    torch.testing.assert_close(alone.anchors[1], batched.anchors[3], atol=2e-5, rtol=1e-4)


class _OrderedTargets(ClipModel):
    """A CLIP whose prompt ``k`` points at ``normalize((1 - a_k)·e0 + a_k·u)``.

    ``e0`` is the start image's embedding, ``u`` a fixed direction: with ``a_k`` increasing,
    each target asks for a larger change of the start face, as "10%, 20%, ..." does of a
    real CLIP. A random CLIP has no such order, so this is how anchor order is tested.
    """

    def __init__(self, model, e0, u, alphas):
        super().__init__(model, spec="ordered")
        self.targets = F.normalize(torch.stack([(1 - a) * e0 + a * u for a in alphas]), dim=-1)

    def text_embeds(self, prompts):
        return self.targets[: len(prompts)]


def test_anchors_follow_degree_order(G, clip):
    """Distance from the start code grows strictly with the degree index."""
    w0 = sample_ws(G, [1])
    with torch.no_grad():
        e0 = clip.image_embeds(G.synthesis(w0, noise_mode="const"))[0]
    u = F.normalize(torch.randn(16, generator=torch.Generator().manual_seed(3)), dim=0)
    alphas = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    ordered = _OrderedTargets(clip.model, e0, u, alphas)
    result = text_anchors(
        G, ordered, [f"{a:.0%}" for a in alphas], config=TextAnchorConfig(steps=30)
    )
    dist = (result.anchors - result.anchors[:1]).flatten(1).norm(dim=1)
    assert dist[0] == 0 and (dist[1:] - dist[:-1] > 0).all(), dist


def test_start_code_and_identity_loss(G, clip):
    torch.manual_seed(0)
    arcface = IRSE(depths=(1, 1, 1, 1), widths=(16, 16, 32, 32), embed_dim=16).eval()
    id_loss = IdentityLoss(arcface)
    start = sample_ws(G, [5], truncation_psi=0.5)[0]
    config = TextAnchorConfig(degrees=DEGREES[:2], steps=8, id_lambda=5.0)
    plain = text_anchors(G, clip, config=config, start_ws=start)
    with_id = text_anchors(G, clip, config=config, start_ws=start, id_model=id_loss)
    torch.testing.assert_close(with_id.anchors[0], start)
    assert not torch.allclose(plain.anchors[1:], with_id.anchors[1:])
    assert all(p.requires_grad for p in arcface.parameters())  # restored after the run
    with pytest.raises(MicromotionError, match="start code"):
        text_anchors(G, clip, config=config, start_ws=torch.zeros(3, G.w_dim))


# --- `micromotion discover text` -------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory, G):
    """A tiny generator and a tiny random CLIP saved as a user would have them."""
    tmp = tmp_path_factory.mktemp("text")
    gen = save_generator(G, tmp / "g.safetensors")
    cfg = tmp / "tiny-clip.json"
    cfg.write_text(json.dumps(TINY_CLIP))
    weights = tmp / "tiny-clip.pt"
    torch.save(tiny_clip_module(1).state_dict(), weights)
    return {"generator": gen, "clip": f"{cfg}:{weights}", "tmp": tmp}


def test_discover_text_cli(files, G, tmp_path):
    out = tmp_path / "out" / "smile.safetensors"
    degrees = "no,25%,50%,75%,100%"
    result = run(
        "discover", "text",
        "--template", "a person with {degree} smile",
        "--generator", files["generator"],
        "--clip", files["clip"],
        "--degrees", degrees,
        "--steps", 6,
        "--rank", 3,
        "--method", "endpoints",
        "--layers", "0-3",
        "--device", "cpu",
        "-o", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "identity loss is off" in result.stderr
    prompts = [f"a person with {d} smile" for d in degrees.split(",")]
    mm = load_micromotion(out)
    assert (
        mm.metadata["source"] == "text"
        and mm.metadata["template"] == "a person with {degree} smile"
    )
    assert mm.metadata["degrees"] == degrees.split(",") and mm.metadata["prompts"] == prompts
    assert mm.metadata["generator_fingerprint"] == G.fingerprint()
    assert mm.metadata["method"] == "endpoints" and mm.mask.tolist() == [True] * 4 + [False] * (
        G.num_ws - 4
    )
    anchors = np.load(out.with_name("smile_anchors.npy"))
    assert anchors.shape == (6, G.num_ws, G.w_dim)
    np.testing.assert_allclose(anchors[0], sample_ws(G, [1], truncation_psi=0.7)[0].numpy())
    record = json.loads(out.with_name("smile.json").read_text())
    assert record["prompts"] == prompts and record["settings"]["steps"] == 6
    assert record["clip"] == files["clip"] and len(record["clip_weights_sha256"]) == 64
    assert record["generator_fingerprint"] == G.fingerprint() and record["identity_loss"] is False
    strip = Image.open(out.with_name("smile_strip.png"))
    # The start face and 5 degrees, 128 px tiles, each with its degree in a band under it.
    assert strip.size == (6 * STRIP_HEIGHT, STRIP_HEIGHT + LABEL_BAND)
    assert json.loads(strip.text["micromotion"])["template"] == "a person with {degree} smile"
    band = np.asarray(strip.convert("RGB"))[STRIP_HEIGHT:]  # [LABEL_BAND, 6·128, 3]
    tiles = [band[:, i * STRIP_HEIGHT : (i + 1) * STRIP_HEIGHT] for i in range(6)]
    assert all(t.max() > 200 for t in tiles)  # every tile has its label, white on black
    assert not np.array_equal(tiles[2], tiles[4])  # "25%" and "75%" read differently


def test_discover_text_template_is_never_evaluated(files, tmp_path):
    out = tmp_path / "evil.safetensors"
    template = "{degree} __import__('os').getcwd() {x}"
    result = run(
        "discover", "text", "--template", template, "--generator", files["generator"],
        "--clip", files["clip"], "--degrees", "no,50%,100%", "--steps", 2, "-o", out,
        "--paper-clip-input",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(out.with_name("evil.json").read_text())
    assert record["prompts"][1] == "50% __import__('os').getcwd() {x}"
    assert record["settings"]["clip_normalize"] is False  # the paper's raw-pixel CLIP input


def test_discover_text_bad_input(files, tmp_path):
    out = tmp_path / "bad.safetensors"
    common = ["--generator", files["generator"], "--clip", files["clip"], "-o", out]
    assert_user_error(run("discover", "text", "--template", "a smile", *common), "{degree}")
    assert_user_error(
        run("discover", "text", "--template", "{degree} smile", "--id-weights",
            tmp_path / "missing.pth", *common),
        "missing.pth", "no such file",
    )  # fmt: skip
    # CLIP is checked before the generator is even looked at.
    assert_user_error(
        run("discover", "text", "--template", "{degree} smile", "--generator",
            tmp_path / "no_generator.pt", "--clip", f"ViT-B-32:{tmp_path / 'clip.bin'}", "-o", out),
        "clip.bin",
    )  # fmt: skip
    assert_user_error(
        run("discover", "text", "--template", "{degree} smile", "--seed", 3, "--latent",
            tmp_path / "w.npy", *common),
        "not both",
    )  # fmt: skip
    assert not list(tmp_path.iterdir())


def test_discover_text_offline_clip(files, tmp_path):
    """No network and an empty cache: one line saying how to get the weights, nothing written."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    out = tmp_path / "o.safetensors"
    proc = subprocess.run(
        [sys.executable, "-c", "from micromotion.cli import main; main()",
         "discover", "text", "--template", "{degree} smile",
         "--generator", str(tmp_path / "no_generator.pt"), "-o", str(out)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "ViT-B-32:openai" in lines[0] and "HF_HUB_OFFLINE" in lines[0]
    assert not out.exists() and not (tmp_path / "o.json").exists()


def test_discover_text_from_a_saved_latent(files, G, tmp_path):
    codes = sample_ws(G, [5, 6], truncation_psi=0.5).numpy()  # [2, num_ws, w_dim]
    np.save(tmp_path / "codes.npy", codes)
    out = tmp_path / "from_latent.safetensors"
    common = [
        "discover", "text", "--template", "{degree} smile", "--generator", files["generator"],
        "--clip", files["clip"], "--degrees", "no,100%", "--steps", 2,
    ]  # fmt: skip
    several = run(*common, "--latent", tmp_path / "codes.npy", "-o", out)
    assert several.exit_code == 1 and "Traceback" not in several.output
    assert several.stderr.splitlines()[-1].endswith(
        "codes.npy: holds 2 codes; pick one with --index (0-1)"
    )
    assert not out.exists()
    result = run(*common, "--latent", tmp_path / "codes.npy", "--index", 1, "-o", out)
    assert result.exit_code == 0, result.output
    anchors = np.load(out.with_name("from_latent_anchors.npy"))
    np.testing.assert_allclose(anchors[0], codes[1])  # the start code is anchor 0
    record = json.loads(out.with_name("from_latent.json").read_text())
    assert record["start"] == {"latent": str(tmp_path / "codes.npy"), "index": 1}
    assert record["settings"]["seed"] is None and record["settings"]["truncation_psi"] is None
    assert_user_error(run(*common, "--index", 1, "-o", out), "--index picks a row")
