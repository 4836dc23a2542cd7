"""`micromotion evaluate`: TL-ID/TG-ID, CLIP text alignment, `--compare` and its plot."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from helpers import TINY_CLIP, tiny_clip_module, tiny_generator
from micromotion import save_generator
from micromotion.errors import MicromotionError
from micromotion.networks.clip import ClipModel
from micromotion.networks.irse import irse50
from micromotion.networks.sampling import sample_ws
from micromotion.pipelines.evaluate import compare, evaluate
from micromotion.render.metrics import (
    degree_positions,
    directional_similarity,
    frame_degrees,
    temporal_identity,
)
from micromotion.subspace.metrics import direction_cosine
from micromotion.subspace.micromotion import Micromotion


def run(*args):
    from micromotion.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_user_error(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


TEMPLATE = "a face with {degree} glow"
DEGREES = ["no", "50%", "100%"]


def text_micromotion(G) -> Micromotion:
    g = torch.Generator().manual_seed(4)
    t = torch.linspace(0, 1, 4)[:, None, None]
    anchors = torch.randn(1, G.num_ws, G.w_dim, generator=g) + t * torch.randn(
        1, G.num_ws, G.w_dim, generator=g
    )
    mm = Micromotion.from_anchors(anchors, rank=2)
    mm.metadata.update(source="text", template=TEMPLATE, degrees=DEGREES, name="glow")
    return mm


def negated(mm: Micromotion, name: str = "neg") -> Micromotion:
    return Micromotion(-mm.direction, mm.mask.clone(), {**mm.metadata, "name": name})


class _PlantedClip(torch.nn.Module):
    """Image embedding ``[C, mean of CLIP's input]``; text embedding ``[C, degree / 100]``.

    With a large ``C`` both unit embeddings move along their second axis only (to first
    order), so the image change is parallel to the text change when the clip brightens and
    antiparallel when it darkens: the directional similarity is ±1 to ~1e-4.
    """

    C = 100.0

    def __init__(self) -> None:
        super().__init__()
        self.visual = torch.nn.Module()
        self.visual.image_size = 16
        self.anchor = torch.nn.Parameter(torch.ones(1))  # ClipModel reads its device

    def encode_image(self, x):  # [N, 3, S, S] -> [N, 3]
        b = x.mean(dim=(1, 2, 3))
        return torch.stack([self.C * self.anchor.expand_as(b), b, torch.zeros_like(b)], dim=1)

    def encode_text(self, tokens):  # [P, 1] degree in percent -> [P, 3]
        d = tokens[:, 0].float() / 100
        return torch.stack([torch.full_like(d, self.C), d, torch.zeros_like(d)], dim=1)


def _degree_tokens(prompts):
    values = []
    for p in prompts:
        word = p.split(" with ")[1].split(" ")[0]
        values.append(0 if word == "no" else int(word.rstrip("%")))
    return torch.tensor(values)[:, None]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    G = tiny_generator(0)
    gen = save_generator(G, tmp / "g.safetensors")
    torch.manual_seed(0)
    ids = tmp / "model_ir_se50.pth"
    torch.save(irse50().state_dict(), ids)
    mm = text_micromotion(G)
    cfg, weights = tmp / "clip.json", tmp / "clip.pt"
    cfg.write_text(json.dumps(TINY_CLIP))
    torch.save(tiny_clip_module(1).state_dict(), weights)
    return {
        "G": G, "generator": gen, "id": ids, "mm": mm, "mm_file": mm.save(tmp / "glow.safetensors"),
        "neg_file": negated(mm).save(tmp / "neg.safetensors"), "clip": f"{cfg}:{weights}",
    }  # fmt: skip


def test_temporal_identity_definitions():
    e = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    found = temporal_identity(e)
    assert found["tl_id"] == pytest.approx(0.0)  # both adjacent pairs are orthogonal
    assert found["tg_id"] == pytest.approx(1 / 3)  # (0, 2) is the one matching pair of three
    assert temporal_identity(torch.ones(4, 3)) == pytest.approx({"tl_id": 1.0, "tg_id": 1.0})
    with pytest.raises(MicromotionError):
        temporal_identity(torch.ones(1, 3))


def test_null_edit_scores_tl_tg_one_and_relative_one(files, tmp_path):
    out = tmp_path / "null.json"
    result = run("evaluate", files["mm_file"], "--generator", files["generator"], "--strength",
                 0, "--frames", 4, "--id-weights", files["id"], "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "TL-ID 1.0000, TG-ID 1.0000" in result.output
    temporal = json.loads(out.read_text())["identity"]["temporal"]
    for key in ("tl_id", "tg_id"):
        assert temporal[key] == pytest.approx(1.0, abs=1e-6)
        assert temporal["unedited"][key] == pytest.approx(1.0, abs=1e-6)
        assert temporal["relative"][key] == pytest.approx(1.0, abs=1e-6)
    # a real edit: the random ArcFace sees the face change, more across the whole clip
    moved = evaluate(files["mm"], generator=files["G"], strength=8.0, frames=5,
                     id_weights=files["id"], output=tmp_path / "moved.json").report  # fmt: skip
    temporal = moved["identity"]["temporal"]
    assert temporal["tl_id"] < 1 - 1e-4 and temporal["tg_id"] < temporal["tl_id"]
    assert temporal["relative"]["tl_id"] == pytest.approx(
        temporal["tl_id"] / temporal["unedited"]["tl_id"]
    )


def test_degrees_map_to_frames():
    assert degree_positions(["no", "10%", "100%"]) == [0.0, 0.1, 1.0]
    assert degree_positions(["calm", "cross", "furious"]) == [0.0, 0.5, 1.0]  # by order
    # frame i sits at i/(T-1); ties go to the earlier degree
    assert frame_degrees(5, [0.0, 0.5, 1.0]) == [0, 0, 1, 1, 2]
    assert frame_degrees(3, [0.0, 0.5, 1.0]) == [0, 1, 2]


def test_directional_similarity_is_plus_or_minus_one_for_a_planted_clip(files, tmp_path):
    G, mm = files["G"], files["mm"]
    clip = ClipModel(_PlantedClip(), tokenizer=_degree_tokens, spec="planted")
    found = evaluate(mm, generator=G, strength=3.0, frames=3, clip=clip,
                     output=tmp_path / "t.json").report["text_alignment"]  # fmt: skip
    # whether this clip brightens (in CLIP's input) decides the sign the planted CLIP sees
    w = sample_ws(G, [0], truncation_psi=0.7)
    ends = torch.cat([w, mm.edit(w, 3.0)])
    with torch.no_grad():
        frames = G.synthesis(ends, noise_mode="const").clamp(-1, 1)
    brightness = clip.preprocess(frames).mean(dim=(1, 2, 3))
    sign = math.copysign(1.0, float(brightness[1] - brightness[0]))
    assert found["directional"] == pytest.approx(sign, abs=1e-3)
    assert found["frame_degree"] == DEGREES
    assert found["directional_prompts"] == [TEMPLATE.replace("{degree}", d) for d in ("no", "100%")]
    # a CLIP whose text reads each degree as its opposite: the text change flips, the score too
    opposed = ClipModel(_PlantedClip(), tokenizer=lambda p: 100 - _degree_tokens(p), spec="opp")
    flipped = evaluate(mm, generator=G, strength=3.0, frames=3, clip=opposed,
                       output=tmp_path / "o.json").report["text_alignment"]  # fmt: skip
    assert flipped["directional"] == pytest.approx(-sign, abs=1e-3)
    # degrees given as percentages are placed by value, not by their order in the list
    same = evaluate(mm, generator=G, strength=3.0, frames=3, clip=clip, template=TEMPLATE,
                    degrees=["100%", "50%", "no"],
                    output=tmp_path / "r.json").report["text_alignment"]  # fmt: skip
    assert same["directional"] == pytest.approx(found["directional"], abs=1e-9)
    assert same["frame_degree"] == DEGREES
    # pure function: exact ±1 and a refused null change
    a, b = torch.tensor([1.0, 0, 0]), torch.tensor([0.0, 1, 0])
    assert directional_similarity(a, b, a, b) == pytest.approx(1.0)
    assert directional_similarity(a, b, b, a) == pytest.approx(-1.0)
    with pytest.raises(MicromotionError, match="non-zero"):
        directional_similarity(a, a, a, b)


def test_text_alignment_with_a_clip_file(files, tmp_path):
    out = tmp_path / "clip.json"
    result = run("evaluate", files["mm_file"], "--generator", files["generator"], "--frames", 3,
                 "--strength", 2, "--clip", files["clip"], "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    text = json.loads(out.read_text())["text_alignment"]
    assert len(text["clip_similarity"]) == 3 and -1 <= text["directional"] <= 1
    assert all(-1 <= v <= 1 for v in text["clip_similarity"]) and 0 <= text["matched"] <= 1
    # a null edit has no change to compare: recorded as null, not an error
    null = evaluate(files["mm_file"], generator=files["generator"], strength=0.0, frames=2,
                    clip=files["clip"], output=tmp_path / "n.json").report  # fmt: skip
    assert null["text_alignment"]["directional"] is None
    assert null["clip"]["spec"] == files["clip"]


def test_compare_with_itself_and_its_negation(files, tmp_path):
    out, png = tmp_path / "cmp.json", tmp_path / "cmp.png"
    result = run("evaluate", "--compare", files["mm_file"], files["mm_file"], files["neg_file"],
                 "--generator", files["generator"], "--seeds", "0-1", "--frames", 3,
                 "--strength", 2, "--id-weights", files["id"], "--plot", png,
                 "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    a, b, neg = report["micromotions"]
    assert [a["label"], b["label"], neg["label"]] == ["glow", "glow#2", "neg"]
    assert {k: v for k, v in a.items() if k != "label"} == {
        k: v for k, v in b.items() if k != "label"
    }
    assert [s["start"]["seed"] for s in a["per_start"]] == [0, 1]
    assert a["summary"]["tl_id"]["n"] == 2 and a["frame_strengths"] == [0.0, 1.0, 2.0]
    pixel = [s["smoothness"]["pixel_rmse"]["mean"] for s in a["per_start"]]
    assert a["summary"]["pixel_step_mean"]["mean"] == pytest.approx(sum(pixel) / 2)
    assert a["summary"]["pixel_step_mean"]["std"] == pytest.approx(abs(pixel[0] - pixel[1]) / 2)
    matrix = report["transfer_consistency"]["matrix"]
    assert matrix[0][1] == pytest.approx(1.0) and matrix[0][2] == pytest.approx(-1.0)
    assert report["generator_fingerprint"] == files["G"].fingerprint()
    plot = report["plot"]
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size == (plot["width"], plot["height"])
        assert image.size[0] == 960 and image.getextrema() != ((255, 255),) * 3
        pixels = np.asarray(image.convert("RGB")).astype(int)
    # One line per micromotion, in matplotlib's colours C0, C1, C2, ...
    colours = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]
    for colour in colours[: len(report["micromotions"])]:
        assert (np.abs(pixels - np.array(colour)).sum(axis=2) < 10).sum() > 50, colour
    # a micromotion on other layers shares only some: the cosine covers those
    half = files["mm"].with_layers("0-3")
    found = direction_cosine(half, negated(files["mm"]).with_layers("2-7"))
    assert found["layers"] == [2, 3] and found["cosine"] == pytest.approx(-1.0)
    assert direction_cosine(half, files["mm"].with_layers("5-7"))["cosine"] is None


def test_compare_strengths_per_micromotion(files, tmp_path):
    found = compare([files["mm"], files["mm"]], generator=files["G"], strength=[0.0, 2.0],
                    frames=2, output=tmp_path / "s.json")  # fmt: skip
    a, b = found.report["micromotions"]
    assert a["summary"]["pixel_step_mean"]["mean"] == 0.0
    assert b["summary"]["pixel_step_mean"]["mean"] > 1e-3
    assert "plot" not in found.files and not (tmp_path / "s.png").exists()


def test_evaluate_compare_user_errors(files, tmp_path):
    common = ("--generator", files["generator"], "--device", "cpu", "--frames", 2)
    out = tmp_path / "r.json"
    assert_user_error(run("evaluate", files["mm_file"], files["neg_file"], *common, "-o", out),
                      "--compare")  # fmt: skip
    assert_user_error(run("evaluate", files["mm_file"], "--seeds", "0-1", *common, "-o", out),
                      "--seeds", "--compare")  # fmt: skip
    assert_user_error(run("evaluate", "--compare", files["mm_file"], files["neg_file"], *common,
                          "--strength", 1, "--strength", 2, "--strength", 3, "-o", out),
                      "--strength")  # fmt: skip
    assert_user_error(run("evaluate", "--compare", files["mm_file"], *common, "--strength",
                          "inf", "-o", out), "--strength")  # fmt: skip
    assert_user_error(run("evaluate", "--compare", files["mm_file"], *common, "--plot",
                          tmp_path / "p.jpg", "-o", out), "--plot", "NAME.png")  # fmt: skip
    assert_user_error(run("evaluate", "--compare", files["mm_file"], *common, "--seeds", "3-1",
                          "-o", out), "--seeds")  # fmt: skip
    assert_user_error(run("evaluate", files["mm_file"], *common, "--template", "no degree",
                          "-o", out), "--template")  # fmt: skip
    assert not out.exists()
