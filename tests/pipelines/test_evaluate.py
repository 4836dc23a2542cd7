"""`micromotion evaluate`: a null edit scores distance 0 and identity 1; subspace metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from helpers import tiny_generator
from micromotion import save_generator
from micromotion.networks.irse import irse50
from micromotion.pipelines.evaluate import evaluate
from micromotion.render.metrics import frame_distances, spread
from micromotion.subspace.metrics import explained_energy, sparse_fraction
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


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evaluate")
    G = tiny_generator(0)
    gen = save_generator(G, tmp / "g.safetensors")
    torch.manual_seed(0)
    ids = tmp / "model_ir_se50.pth"
    torch.save(irse50().state_dict(), ids)  # random: faces differ, so cosines differ
    g = torch.Generator().manual_seed(4)
    t = torch.linspace(0, 1, 9)[:, None, None]
    anchors = torch.randn(1, G.num_ws, G.w_dim, generator=g) + t * torch.randn(
        1, G.num_ws, G.w_dim, generator=g
    )
    anchors = anchors + 0.02 * torch.randn(anchors.shape, generator=g)
    anchors[4, 2, :2] += 5.0  # an outlier RPCA puts in S
    mm = Micromotion.from_anchors(anchors, rpca_kwargs={"mu": "paper", "tol": "paper"})
    mm.metadata["rpca_settings"] = "paper"
    mm_file = mm.save(tmp / "m.safetensors")
    return {"G": G, "generator": gen, "id": ids, "mm": mm_file, "tmp": tmp}


def test_null_edit_scores_identity_one_and_distance_zero(files, tmp_path):
    out = tmp_path / "null.json"
    result = run("evaluate", files["mm"], "--generator", files["generator"], "--strength", 0,
                 "--frames", 3, "--id-weights", files["id"], "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    pixel = report["smoothness"]["pixel_rmse"]
    assert pixel["steps"] == [0.0, 0.0] and pixel["mean"] == 0 and pixel["cv"] == 0
    assert report["identity"]["cosine_to_first"] == pytest.approx([1.0] * 3, abs=1e-6)
    assert report["generator_fingerprint"] == files["G"].fingerprint()
    # the same clip with a real edit moves, and the random ArcFace sees a different face
    moved = evaluate(files["mm"], generator=files["generator"], strength=8.0, frames=3,
                     id_weights=files["id"], output=tmp_path / "moved.json")  # fmt: skip
    assert moved.report["smoothness"]["pixel_rmse"]["min"] > 1e-3
    sims = moved.report["identity"]["cosine_to_first"]
    assert sims[0] == pytest.approx(1.0, abs=1e-6) and min(sims[1:]) < 1 - 1e-4


def test_subspace_metrics(files, tmp_path):
    mm = Micromotion.load(files["mm"])
    found = evaluate(mm, generator=files["generator"], frames=2, output=tmp_path / "s.json",
                     device="cpu")  # fmt: skip
    sub = found.report["subspace"]
    assert sub["rank"] == 4 and sub["rpca_settings"] == "paper" and found.report["identity"] is None
    expected = explained_energy(mm.singular_values, 4)
    np.testing.assert_allclose(sub["explained_energy"], expected.numpy(), rtol=1e-5)
    spectrum = np.array(sub["spectrum"])  # [num_ws, min(n, w_dim)]
    np.testing.assert_allclose(spectrum, mm.singular_values.numpy(), rtol=1e-5, atol=1e-6)
    assert (np.diff(spectrum, axis=1) <= 0).all()  # descending
    assert all(0 < e <= 1 for e in sub["explained_energy"])
    # the outlier sits in layer 2: most of RPCA's sparse energy is there
    energy = sub["sparse_energy"]
    assert energy[2] == max(energy) and energy[2] > 5 * sorted(energy)[-2]
    assert all(0 < f <= 1 for f in sub["sparse_fraction"])
    assert explained_energy(torch.tensor([[3.0, 4.0], [0.0, 0.0]]), 1).tolist() == [0.36, 1.0]
    assert sparse_fraction(torch.tensor([[[0.0, 1.0]], [[0.0, 0.0]]])).tolist() == [0.25]


def test_frame_metrics_are_what_they_say():
    frames = torch.stack([torch.full((3, 4, 4), v) for v in (-1.0, 0.0, 0.0, 1.0)])
    steps = frame_distances(frames)
    torch.testing.assert_close(steps, torch.tensor([0.5, 0.0, 0.5], dtype=torch.float64))
    summary = spread(steps)
    assert summary["max"] == 0.5 and summary["mean"] == pytest.approx(1 / 3)
    assert summary["cv"] == pytest.approx(summary["std"] / summary["mean"])


def test_evaluate_user_errors(files, tmp_path):
    common = (files["mm"], "--generator", files["generator"], "--device", "cpu")
    assert_user_error(run("evaluate", *common, "-o", tmp_path / "r.txt"), "NAME.json")
    assert_user_error(run("evaluate", *common, "--strength", "nan", "-o", tmp_path / "r.json"),
                      "--strength")  # fmt: skip
    assert_user_error(run("evaluate", *common, "--id-weights", tmp_path / "no.pth", "-o",
                          tmp_path / "r.json"))  # fmt: skip
    assert not (tmp_path / "r.json").exists()


def test_cli_lpips_scores_the_clip(files, tmp_path, lpips_cached):
    """`evaluate --lpips` measures LPIPS between consecutive frames (the CLI passes it on)."""
    out = tmp_path / "lpips.json"
    result = run("evaluate", files["mm"], "--generator", files["generator"], "--strength", 3,
                 "--frames", 3, "--lpips", "--device", "cpu", "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    smooth = json.loads(out.read_text())["smoothness"]
    assert smooth["lpips"] is not None and len(smooth["lpips"]["steps"]) == 2
    assert min(smooth["lpips"]["steps"]) > 0  # a moving clip: its frames differ
    plain = tmp_path / "plain.json"
    again = run("evaluate", files["mm"], "--generator", files["generator"], "--strength", 3,
                "--frames", 3, "--device", "cpu", "-o", plain)  # fmt: skip
    assert again.exit_code == 0, again.output
    assert "lpips" not in json.loads(plain.read_text())["smoothness"]
