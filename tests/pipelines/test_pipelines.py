"""The jobs as library calls: a loaded generator in, results and records out, nothing printed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import tiny_generator
from micromotion import Micromotion, MicromotionError, ParameterError
from micromotion.inversion import InversionConfig
from micromotion.media.images import to_uint8
from micromotion.pipelines.animate import ClipSettings, animate
from micromotion.pipelines.discover import Decomposition, discover_latents
from micromotion.pipelines.invert import invert_photos


def planted_micromotion(G, seed: int = 0) -> Micromotion:
    gen = torch.Generator().manual_seed(seed)
    d = torch.randn(G.num_ws, G.w_dim, generator=gen)
    return Micromotion(direction=d, mask=torch.ones(G.num_ws, dtype=torch.bool))


def test_animate_a_seed_with_a_loaded_generator(tmp_path, capsys):
    G = tiny_generator(0)
    mm = planted_micromotion(G)
    events = []
    done = animate(
        [mm],
        output=tmp_path / "clip.png",
        strengths=[2.0],
        generator=G,
        seed=3,
        clip=ClipSettings(frames=5, batch_size=2),
        progress=lambda stage, n, total, note: events.append((stage, n, total)),
    )
    assert done.output.is_file() and done.total_frames == 5
    assert json.loads(done.record_path.read_text())["generator_fingerprint"] == G.fingerprint()
    strip = np.asarray(Image.open(done.output))
    assert strip.shape == (32, 5 * 32, 3)
    # The last frame is w + 2·d: the strip's last tile is that code rendered.
    with torch.no_grad():
        from micromotion.networks.sampling import sample_ws

        w = sample_ws(G, [3])[0]
        last = to_uint8(G.synthesis(mm.edit(w[None], 2.0), noise_mode="const"))[0]
    assert np.abs(strip[:, -32:].astype(int) - last.astype(int)).max() <= 1
    assert events[-1] == ("render", 5, 5)
    assert capsys.readouterr().out == ""  # pipelines never print


def test_animate_checks_inputs_before_work(tmp_path):
    G = tiny_generator(0)
    mm = planted_micromotion(G)
    with pytest.raises(ParameterError, match=r"give exactly one of image PHOTO") as info:
        animate([mm], output=tmp_path / "a.mp4", generator=G)
    assert info.value.render({"image": "--image"}).startswith("give exactly one of --image")
    with pytest.raises(ParameterError, match="frames 1"):
        ClipSettings(frames=1)
    with pytest.raises(ParameterError, match="strengths"):
        animate([mm], output=tmp_path / "a.mp4", generator=G, seed=0, strengths=[float("nan")])
    assert list(tmp_path.iterdir()) == []


def test_discover_latents_and_invert_photos(tmp_path):
    G = tiny_generator(0)
    d = planted_micromotion(G).direction
    w0 = torch.randn(G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(1))
    anchors = torch.stack([w0 + t * d for t in torch.linspace(0, 1, 6)])  # [6, L, C]
    np.save(tmp_path / "anchors.npy", anchors.numpy())
    found = discover_latents(
        tmp_path / "anchors.npy",
        output=tmp_path / "line.safetensors",
        decomposition=Decomposition(rank=2, method="endpoints", robust=False),
    )
    cos = torch.nn.functional.cosine_similarity(
        found.micromotion.direction.flatten(), d.flatten(), dim=0
    )
    assert float(cos) > 0.999  # a straight line of anchors: plain rank-2 PCA is exact
    assert Micromotion.load(found.files["micromotion"]).name == "line"

    with torch.no_grad():
        face = to_uint8(G.synthesis(w0[None], noise_mode="const"))[0]
    Image.fromarray(face).save(tmp_path / "face.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    report = invert_photos(
        [tmp_path / "face.png", tmp_path / "broken.png"],
        outdir=tmp_path / "codes",
        generator=G,
        config=InversionConfig(steps=5),
        align=False,
        lpips=False,
    )
    assert [p.image.name for p in report.done] == ["face.png"] and report.total == 2
    assert len(report.failures) == 1 and "broken.png" in report.failures[0]
    code = np.load(report.done[0].code)
    assert code.shape == (G.num_ws, G.w_dim) and np.isfinite(code).all()
    with pytest.raises(MicromotionError, match="share the name"):
        invert_photos(
            [tmp_path / "face.png", tmp_path / "face.png"],
            outdir=tmp_path,
            generator=G,
            align=False,
        )


def test_cli_option_names_cover_library_parameters():
    from micromotion.cli import main
    from micromotion.cli._common import option_names

    names = option_names(main)
    assert names["steps"] == "--steps" and names["next_steps"] == "--next-steps"
    assert names["truncation_psi"] == "--truncation" and names["strengths"] == "--strength"
    assert names["clip"] == "--clip" and names["every"] == "--every"
