"""`micromotion baseline sefa|ganspace`: planted generators, files `apply` takes, user errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from helpers import tiny_generator
from micromotion import save_generator
from micromotion.errors import ParameterError
from micromotion.networks.sampling import sample_ws
from micromotion.pipelines.baselines import ganspace_direction, sefa_direction
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


def unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm()


def planted_sefa_generator(u: torch.Tensor, v: torch.Tensor):
    """Affines of the convs reading entries 0-3 read mostly ``u``; all others read ``v``."""
    G = tiny_generator(0)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for entry, _, affine in G.synthesis.style_affines():
            target = u if entry <= 3 else v
            c = affine.weight.shape[0]
            rows = torch.randn(c, 1, generator=g) * target + 0.05 * torch.randn(
                c, G.w_dim, generator=g
            )
            affine.weight.copy_(rows * 4)
    return G


def test_sefa_recovers_the_planted_direction_of_the_chosen_layers(tmp_path):
    g = torch.Generator().manual_seed(2)
    u, v = unit(torch.randn(10, generator=g)), unit(torch.randn(10, generator=g))
    G = planted_sefa_generator(u, v)
    early = sefa_direction(G, output=tmp_path / "early.safetensors", layers="0-3")
    late = sefa_direction(G, output=tmp_path / "late.safetensors", layers="4-7")
    assert abs(float(early.micromotion.direction[0] @ u)) > 0.99
    assert abs(float(late.micromotion.direction[0] @ v)) > 0.99
    assert abs(float(early.micromotion.direction[0] @ v)) < 0.9  # not the other layers'
    # convs only, as SeFa: entry 3 is read by b8.torgb (left out) and b16.conv0
    assert early.micromotion.metadata["affines"] == [
        "b4.conv1",
        "b8.conv0",
        "b8.conv1",
        "b16.conv0",
    ]
    mm = Micromotion.load(tmp_path / "early.safetensors")
    assert mm.metadata["method"] == "sefa" and mm.metadata["component"] == 0
    assert mm.metadata["generator_fingerprint"] == G.fingerprint()
    assert mm.metadata["layers"] == "0-3" and len(mm.metadata["eigenvalues"]) == 10
    torch.testing.assert_close(mm.direction.norm(dim=1), torch.ones(G.num_ws))
    # the second component is orthogonal to the first
    second = sefa_direction(G, output=tmp_path / "c1.safetensors", layers="0-3", component=1)
    assert abs(float(second.micromotion.direction[0] @ mm.direction[0])) < 1e-5


def planted_ganspace_generator(u: torch.Tensor):
    """The mapping's last layer outputs ≈ 50 + 5·(x·v̂)·u: w spreads along ``u`` only."""
    G = tiny_generator(0)
    fc = G.mapping.fc1
    g = torch.Generator().manual_seed(7)
    v = unit(torch.randn(fc.weight.shape[1], generator=g))
    w_eff = 5 * torch.outer(u, v) + 0.02 * torch.randn(fc.weight.shape, generator=g)
    with torch.no_grad():
        fc.weight.copy_(w_eff / fc.weight_gain)
        fc.bias.copy_(torch.full_like(fc.bias, 50.0) / fc.bias_gain)  # stays in the linear part
    return G


def test_ganspace_recovers_the_planted_spread(tmp_path):
    u = unit(torch.rand(10, generator=torch.Generator().manual_seed(3)) + 0.1)  # positive
    G = planted_ganspace_generator(u)
    found = ganspace_direction(
        G, output=tmp_path / "pc0.safetensors", layers="0-5", samples=3000, seed=1
    )
    mm = Micromotion.load(tmp_path / "pc0.safetensors")
    cos = float(unit(mm.direction[0]) @ u)
    assert abs(cos) > 0.99, cos
    assert mm.metadata["method"] == "ganspace" and mm.metadata["scale"] == "std"
    assert mm.metadata["samples"] == 3000 and mm.metadata["explained"] > 0.9
    # std scale: the direction's norm is the spread of w along it
    assert float(mm.direction[0].norm()) == pytest.approx(math.sqrt(mm.metadata["variance"]))
    w = G.mapping(torch.randn(3000, G.z_dim, generator=torch.Generator().manual_seed(9)))[:, 0]
    measured = float((w @ unit(mm.direction[0])).std())
    assert measured == pytest.approx(mm.metadata["std"], rel=0.1)
    # same seed, same file contents; a unit-scaled one has norm 1
    unit_mm = ganspace_direction(
        G, output=tmp_path / "u.safetensors", samples=3000, seed=1, scale="unit"
    ).micromotion
    torch.testing.assert_close(unit_mm.direction[0], unit(found.micromotion.direction[0]))


def test_baseline_files_drive_apply(tmp_path):
    G = tiny_generator(0)
    gen = save_generator(G, tmp_path / "g.safetensors")
    out = tmp_path / "sefa.safetensors"
    result = run("baseline", "sefa", "--generator", gen, "--component", 1, "--layers", "0-3",
                 "-o", out, "--device", "cpu")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "sefa component 1" in result.output and "layers 0-3" in result.output
    mm = Micromotion.load(out)
    ws = sample_ws(G, [0, 1])
    moved = mm.edit(ws, 3.0) - ws  # [2, num_ws, w_dim]
    torch.testing.assert_close(moved[:, :4], 3 * mm.direction[:4].expand(2, -1, -1))
    assert not moved[:, 4:].any()
    clip = tmp_path / "clip.png"
    result = run("apply", out, "--seed", 0, "--generator", gen, "--frames", 3, "--strength", 3,
                 "-o", clip, "--device", "cpu")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert Image.open(clip).size[0] >= G.img_resolution
    pcs = tmp_path / "pc.safetensors"
    result = run("baseline", "ganspace", "--generator", gen, "--samples", 500, "-o", pcs,
                 "--device", "cpu")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert Micromotion.load(pcs).metadata["samples"] == 500
    assert np.isfinite(Micromotion.load(pcs).direction.numpy()).all()


def test_baseline_user_errors(tmp_path):
    G = tiny_generator(0)
    gen = save_generator(G, tmp_path / "g.safetensors")
    out = tmp_path / "o.safetensors"
    common = ("--generator", gen, "--device", "cpu")
    assert_user_error(run("baseline", "sefa", *common, "--component", 10, "-o", out),
                      "--component 10", "10 dimensions")  # fmt: skip
    assert_user_error(run("baseline", "sefa", *common, "--layers", "0-9", "-o", out), "--layers")
    assert_user_error(run("baseline", "sefa", *common, "--layers", "7", "-o", out),
                      "--include-torgb")  # fmt: skip
    assert run("baseline", "sefa", *common, "--layers", "7", "--include-torgb", "-o",
               out).exit_code == 0  # fmt: skip
    assert_user_error(run("baseline", "ganspace", *common, "-o", tmp_path / "o.npy"),
                      "NAME.safetensors")  # fmt: skip
    assert_user_error(run("baseline", "sefa", "--generator", tmp_path / "none.pt", "-o", out))
    assert not (tmp_path / "o.npy").exists()
    with pytest.raises(ParameterError, match="samples"):
        ganspace_direction(G, output=tmp_path / "x.safetensors", samples=1)
