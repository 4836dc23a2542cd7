"""``--preset paper``: the paper code's settings on one flag, overrides recorded, the 90 % slip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from helpers import TINY_CLIP, tiny_clip_module, tiny_generator
from micromotion import save_generator
from micromotion.errors import MicromotionError, ParameterError
from micromotion.pipelines.discover import Decomposition, discover_latents
from micromotion.pipelines.presets import check_preset, preset_values, resolve_preset
from micromotion.subspace import direction_from, robust_pca
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


def planted_anchors(n: int = 12, num_ws: int = 4, w_dim: int = 24, seed: int = 3) -> torch.Tensor:
    """A face plus a straight motion, noise, and one wild anchor: ``[n, num_ws, w_dim]``."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(1, num_ws, w_dim, generator=g) * 2
    d = torch.randn(1, num_ws, w_dim, generator=g)
    t = torch.linspace(0, 1, n)[:, None, None]
    anchors = base + t * d + 0.05 * torch.randn(n, num_ws, w_dim, generator=g)
    anchors[5, :, :3] += 4.0  # a sparse outlier for RPCA to absorb
    return anchors


def papers_direction(anchors: torch.Tensor) -> torch.Tensor:
    """The paper code's recipe by hand: per layer RPCA (its μ, its rule), rank 4, L̂[-2] − L̂[0]."""
    out = []
    for layer in range(anchors.shape[1]):
        D = anchors[:, layer].double()  # [n, w_dim]
        L = robust_pca(D, mu="paper", tol="paper").L
        U, s, Vh = torch.linalg.svd(L, full_matrices=False)
        low = (U[:, :4] * s[:4]) @ Vh[:4]  # [n, w_dim]
        out.append(low[-2] - low[0])
    return torch.stack(out).float()  # [num_ws, w_dim]


def test_latents_preset_is_the_papers_recipe(tmp_path):
    """discover latents --preset paper == RPCA(mu=paper, tol=paper) + rank 4 + endpoints to -2."""
    anchors = planted_anchors()
    np.save(tmp_path / "a.npy", anchors.numpy())
    out = tmp_path / "p.safetensors"
    result = run("discover", "latents", tmp_path / "a.npy", "--preset", "paper", "-o", out)
    assert result.exit_code == 0, result.output
    mm = Micromotion.load(out)
    torch.testing.assert_close(mm.direction, papers_direction(anchors), atol=1e-5, rtol=1e-5)
    library = Micromotion.from_anchors(
        anchors,
        rank=4,
        method="endpoints",
        end_anchor=-2,
        rpca_kwargs={"mu": "paper", "tol": "paper"},
    )
    assert torch.equal(mm.direction, library.direction)
    meta = mm.metadata
    assert meta["preset"] == "paper" and meta["preset_overrides"] == {}
    assert meta["rpca_settings"] == "paper" and meta["method"] == "endpoints"
    assert meta["rank"] == 4 and meta["end_anchor"] == -2 and meta["robust"] is True
    assert any("90%" in note for note in meta["preset_notes"])
    # ... and it is not our default recipe, nor the paper's definition (the true last anchor)
    default = Micromotion.from_anchors(anchors)
    last = Micromotion.from_anchors(
        anchors, method="endpoints", rpca_kwargs={"mu": "paper", "tol": "paper"}
    )
    for other in (default, last):
        assert (mm.direction - other.direction).abs().max() > 1e-2


def test_explicit_options_override_the_preset_and_are_recorded(tmp_path):
    anchors = planted_anchors()
    np.save(tmp_path / "a.npy", anchors.numpy())
    out = tmp_path / "p.safetensors"
    result = run(
        "discover", "latents", tmp_path / "a.npy", "--preset", "paper",
        "--end-anchor", -1, "--rank", 3, "--rpca", "paper", "-o", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "note: --end-anchor -1 overrides --preset paper (-2)" in result.stderr
    assert "note: --rank 3 overrides --preset paper (4)" in result.stderr
    assert "--rpca" not in result.stderr  # the same value as the preset's is no override
    mm = Micromotion.load(out)
    assert mm.metadata["preset_overrides"] == {
        "end_anchor": {"preset": -2, "given": -1},
        "rank": {"preset": 4, "given": 3},
    }
    expected = Micromotion.from_anchors(
        anchors, rank=3, method="endpoints", rpca_kwargs={"mu": "paper", "tol": "paper"}
    )
    assert torch.equal(mm.direction, expected.direction)
    assert mm.metadata["preset_notes"] == []  # the 90 % note only when the slip is in use


def test_the_90_percent_slip_is_an_explicit_option_never_the_default(tmp_path):
    anchors = planted_anchors()
    np.save(tmp_path / "a.npy", anchors.numpy())
    plain, slip = tmp_path / "plain.safetensors", tmp_path / "slip.safetensors"
    assert run("discover", "latents", tmp_path / "a.npy", "-o", plain).exit_code == 0
    r = run("discover", "latents", tmp_path / "a.npy", "--end-anchor", -2, "--method",
            "endpoints", "-o", slip)  # fmt: skip
    assert r.exit_code == 0, r.output
    a, b = Micromotion.load(plain), Micromotion.load(slip)
    assert a.metadata["end_anchor"] == -1 and "preset" not in a.metadata
    assert b.metadata["end_anchor"] == -2
    den = b.denoised_anchors
    assert torch.equal(b.direction, (den[-2] - den[0]).float())
    out = tmp_path / "x.safetensors"
    assert_user_error(
        run("discover", "latents", tmp_path / "a.npy", "--end-anchor", 0, "-o", out),
        "--end-anchor",
    )
    assert_user_error(
        run("discover", "latents", tmp_path / "a.npy", "--end-anchor", 12, "-o", out),
        "end_anchor 12",
    )


def test_direction_from_end_anchor():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, 5, generator=g, dtype=torch.float64)
    torch.testing.assert_close(
        direction_from(x, method="endpoints", end_anchor=-2), x[-2] - x[0], rtol=0, atol=0
    )
    torch.testing.assert_close(
        direction_from(x, method="endpoints", end_anchor=3), x[3] - x[0], rtol=0, atol=0
    )
    # the slopes are fitted to anchors 0 … end only, times included
    torch.testing.assert_close(
        direction_from(x, method="slope", end_anchor=-3),
        direction_from(x[:4], method="slope", times=torch.linspace(0, 1, 6)[:4]),
    )
    for bad in (0, 6, -6, 1.5):
        with pytest.raises(MicromotionError, match="end_anchor"):
            direction_from(x, end_anchor=bad)  # type: ignore[arg-type]


def test_a_preset_record_that_does_not_match_is_refused(tmp_path):
    anchors = planted_anchors()
    np.save(tmp_path / "a.npy", anchors.numpy())
    record = resolve_preset("paper", "latents", {}).record
    with pytest.raises(ParameterError, match="rpca is 'converged'"):
        discover_latents(
            tmp_path / "a.npy", output=tmp_path / "o.safetensors", preset=record,
            decomposition=Decomposition(method="endpoints", end_anchor=-2),
        )  # fmt: skip
    assert not (tmp_path / "o.safetensors").exists()
    check_preset(record, "latents", Decomposition(**preset_values("paper", "latents")).settings())
    with pytest.raises(ParameterError, match="preset"):
        preset_values("ours", "text")


def test_video_preset_ends_at_the_last_frame():
    values = preset_values("paper", "video")
    assert values["end_anchor"] == -1 and values["rpca"] == "paper"
    assert values["iterations"] == 5 and values["refine"] == 0
    assert (values["space"], values["w_reg"], values["clip_aware"]) == ("w+", 0.0, False)
    assert "clip_normalize" not in values


@pytest.fixture(scope="module")
def text_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("preset-text")
    G = tiny_generator(0)
    gen = save_generator(G, tmp / "g.safetensors")
    cfg = tmp / "tiny-clip.json"
    cfg.write_text(json.dumps(TINY_CLIP))
    weights = tmp / "tiny-clip.pt"
    torch.save(tiny_clip_module(1).state_dict(), weights)
    return {"generator": gen, "clip": f"{cfg}:{weights}", "G": G}


def test_text_preset_sets_the_papers_settings(text_files, tmp_path):
    out = tmp_path / "smile.safetensors"
    result = run(
        "discover", "text", "--template", "a person with {degree} smile",
        "--generator", text_files["generator"], "--clip", text_files["clip"],
        "--preset", "paper", "--steps", 3, "--device", "cpu", "-o", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "note: --steps 3 overrides --preset paper (40)" in result.stderr
    record = json.loads(out.with_name("smile.json").read_text())
    settings = record["settings"]
    assert settings["clip_normalize"] is False  # raw [-1, 1] pixels, as StyleCLIP fed CLIP
    assert settings["lr"] == 0.1 and settings["l2_lambda"] == 0.008
    assert settings["id_lambda"] == 0.005 and settings["truncation_psi"] == 0.7
    assert settings["seed"] == 1 and settings["steps"] == 3 and len(settings["degrees"]) == 11
    assert record["preset"]["name"] == "paper"
    assert set(record["preset"]["overrides"]) == {"steps", "clip"}
    assert any("identity loss is off" in n for n in record["preset"]["notes"])
    assert record["rpca_settings"] == "paper" and record["end_anchor"] == -2
    mm = Micromotion.load(out)
    assert mm.metadata["preset"] == "paper" and mm.metadata["method"] == "endpoints"
    assert mm.num_anchors == 12  # the start code and 11 degrees, the paper's layout
    # The same decomposition from the saved anchors: text and latents presets agree.
    again = tmp_path / "again.safetensors"
    r = run("discover", "latents", out.with_name("smile_anchors.npy"), "--preset", "paper",
            "-o", again)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert torch.equal(Micromotion.load(again).direction, mm.direction)


def test_text_preset_with_several_faces(text_files, tmp_path):
    """--preset paper --seeds: the paper's settings for every face, decoded jointly.

    The paper's code decoded each seed alone (``--num_latent``); one joint micromotion is
    ours, and with one face it is the one-face result bit for bit.
    """
    common = ("discover", "text", "--template", "a person with {degree} smile",
              "--generator", text_files["generator"], "--clip", text_files["clip"],
              "--preset", "paper", "--steps", 2, "--device", "cpu")  # fmt: skip
    out = tmp_path / "joint.safetensors"
    result = run(*common, "--seeds", "1-2", "--held-out", "7", "-o", out)
    assert result.exit_code == 0, result.output
    assert "transfer to 1 held-out faces" in result.output
    record = json.loads(out.with_name("joint.json").read_text())
    assert record["settings"]["seeds"] == [1, 2] and record["settings"]["seed"] is None
    assert record["rpca_settings"] == "paper" and record["end_anchor"] == -2
    assert set(record["preset"]["overrides"]) == {"steps", "clip"}
    mm = Micromotion.load(out)
    assert mm.metadata["num_faces"] == 2 and mm.metadata["preset"] == "paper"
    assert np.load(out.with_name("joint_anchors.npy")).shape[:2] == (2, 12)
    # One face under --seeds is the one-face preset run, bit for bit.
    one, single = tmp_path / "one.safetensors", tmp_path / "single.safetensors"
    assert run(*common, "--seeds", "1", "--held-out", "7", "-o", one).exit_code == 0
    assert run(*common, "-o", single).exit_code == 0
    assert torch.equal(Micromotion.load(one).direction, Micromotion.load(single).direction)


def test_video_preset_end_to_end(tmp_path):
    """discover video --preset paper: the paper's decomposition, ending at the last frame."""
    from helpers import write_lossless_mp4
    from micromotion.media.images import to_uint8
    from micromotion.networks.sampling import sample_ws

    G = tiny_generator(0)
    gen = save_generator(G, tmp_path / "g.safetensors")
    ws = sample_ws(G, [0]).expand(5, -1, -1) + torch.linspace(0, 2, 5)[:, None, None]
    with torch.no_grad():
        frames = to_uint8(G.synthesis(ws))  # [5, 32, 32, 3]
    video = tmp_path / "v.mp4"
    write_lossless_mp4(video, frames)
    out = tmp_path / "v.safetensors"
    result = run(
        "discover", "video", video, "--generator", gen, "--no-align", "--no-lpips",
        "--preset", "paper", "--frames", 5, "--steps", 2, "--next-steps", 2,
        "--device", "cpu", "-o", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "overrides --preset" not in result.stderr  # none of these are preset settings
    mm = Micromotion.load(out)
    assert mm.metadata["preset"] == "paper" and mm.metadata["end_anchor"] == -1
    assert mm.metadata["rpca_settings"] == "paper" and mm.metadata["method"] == "endpoints"
    record = json.loads(out.with_name("v.json").read_text())
    assert record["preset"]["overrides"] == {} and record["inverter"]["method"] == "projector"
    # The projector the preset falls back to is StyleGAN2's: none of our fitting additions.
    settings = record["settings"]
    assert (settings["w_reg"], settings["clip_aware"], settings["space"]) == (0.0, False, "w+")
    den = mm.denoised_anchors
    assert torch.equal(mm.direction, (den[-1] - den[0]).float())
