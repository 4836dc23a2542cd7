"""The CLI as a user runs it: generate, convert, apply, discover latents, info, import-official."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from helpers import REFERENCE, tiny_generator, zoo_entry
from micromotion import load_generator, save_generator
from micromotion.media.images import to_uint8
from micromotion.media.video_in import read_video_frames
from micromotion.networks.sampling import sample_ws
from micromotion.subspace.micromotion import Micromotion


def run(*args):
    from micromotion.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


def assert_same_image(got, expected):
    """Equal up to one quantisation step (float order differs between batch and single)."""
    diff = np.abs(got.astype(int) - expected.astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.05, (diff.max(), diff.mean())


def assert_user_error(result, *fragments):
    """Exit 1, one line on stderr starting with 'error:', no traceback."""
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def gen_file(tmp_path, tiny_G):
    return save_generator(tiny_G, tmp_path / "tiny.safetensors")


@pytest.fixture
def mm_file(tmp_path, tiny_G):
    g = torch.Generator().manual_seed(1)
    mm = Micromotion(
        direction=torch.randn(tiny_G.num_ws, tiny_G.w_dim, generator=g) * 0.3,
        mask=torch.ones(tiny_G.num_ws, dtype=torch.bool),
        metadata={
            "name": "wiggle",
            "source": "latents",
            "generator_fingerprint": tiny_G.fingerprint(),
        },
    )
    return mm.save(tmp_path / "wiggle.safetensors")


# ----------------------------------------------------------------------------- generate


def test_generate(tmp_path, gen_file, tiny_G):
    out = tmp_path / "out"
    result = run(
        "generate",
        "--generator",
        gen_file,
        "--seeds",
        "0-2,7",
        "--truncation",
        "0.7",
        "--outdir",
        out,
        "--device",
        "cpu",
    )
    assert result.exit_code == 0, result.output
    latents = np.load(out / "latents.npy")
    assert latents.shape == (4, tiny_G.num_ws, tiny_G.w_dim) and latents.dtype == np.float32
    expected = sample_ws(tiny_G, [0, 1, 2, 7], truncation_psi=0.7)
    np.testing.assert_allclose(latents, expected.numpy(), atol=1e-6)
    meta = json.loads((out / "generate.json").read_text())
    assert meta["seeds"] == [0, 1, 2, 7]
    assert meta["generator_fingerprint"] == tiny_G.fingerprint()
    assert meta["truncation_psi"] == 0.7 and meta["micromotion_version"]
    img = np.asarray(Image.open(out / "seed0007.png"))
    np.testing.assert_array_equal(img, to_uint8(tiny_G.synthesis(expected[3:4]))[0])
    assert json.loads(Image.open(out / "seed0007.png").text["micromotion"])["seed"] == 7


def test_generate_bad_inputs(tmp_path, gen_file):
    out = tmp_path / "out"
    assert_user_error(
        run("generate", "--generator", tmp_path / "nope.pkl", "--outdir", out),
        "nope.pkl: no such file",
    )
    assert_user_error(
        run("generate", "--generator", gen_file, "--seeds", "3-1", "--outdir", out), "bad range"
    )
    (tmp_path / "afile").write_text("")
    assert_user_error(
        run("generate", "--generator", gen_file, "--outdir", tmp_path / "afile"), "not a directory"
    )
    assert_user_error(
        run("generate", "--generator", gen_file, "--seeds", "a", "--outdir", out),
        "'a' is not a seed",
    )
    assert not out.exists()
    (tmp_path / "junk.pkl").write_bytes(b"\x80\x04junk")
    assert_user_error(
        run("generate", "--generator", tmp_path / "junk.pkl", "--outdir", out), "junk.pkl"
    )
    assert not out.exists()


# ----------------------------------------------------------------------------- convert


def test_convert_round_trip(tmp_path, tiny_G, gen_file):
    pt = tmp_path / "g.pt"
    assert run("convert", gen_file, pt).exit_code == 0
    back = tmp_path / "back.safetensors"
    result = run("convert", pt, back)
    assert result.exit_code == 0, result.output
    assert load_generator(back).fingerprint() == tiny_G.fingerprint()
    assert_user_error(run("convert", gen_file, tmp_path / "x.bin"), "x.bin")
    assert_user_error(
        run("convert", tmp_path / "missing.pt", tmp_path / "y.safetensors"), "no such file"
    )
    assert not (tmp_path / "y.safetensors").exists()


# ----------------------------------------------------------------------------- apply


def test_apply_png_strip_is_exact(tmp_path, gen_file, mm_file, tiny_G):
    out = tmp_path / "clip.png"
    result = run(
        "apply",
        mm_file,
        "--generator",
        gen_file,
        "--seed",
        3,
        "--frames",
        5,
        "--strength",
        2.0,
        "-o",
        out,
        "--device",
        "cpu",
    )
    assert result.exit_code == 0, result.output
    strip = np.asarray(Image.open(out).convert("RGB"))
    R = tiny_G.img_resolution
    assert strip.shape == (R, 5 * R, 3)
    mm = Micromotion.load(mm_file)
    w = sample_ws(tiny_G, [3], truncation_psi=0.7)[0]
    for i in (0, 4):
        code = w + (i / 4) * 2.0 * mm.direction
        expected = to_uint8(tiny_G.synthesis(code[None]))[0]
        assert_same_image(strip[:, i * R : (i + 1) * R], expected)
    sidecar = json.loads((tmp_path / "clip.png.json").read_text())
    assert sidecar["generator_fingerprint"] == tiny_G.fingerprint()
    assert sidecar["micromotions"][0]["name"] == "wiggle"
    assert sidecar["micromotions"][0]["strength"] == 2.0


def test_apply_mp4_with_latent_and_pingpong(tmp_path, gen_file, mm_file, tiny_G):
    latents = sample_ws(tiny_G, [0, 1], truncation_psi=0.5).numpy()
    np.save(tmp_path / "w.npy", latents)
    out = tmp_path / "clip.mp4"
    result = run(
        "apply",
        mm_file,
        "--generator",
        gen_file,
        "--latent",
        tmp_path / "w.npy",
        "--index",
        1,
        "--frames",
        6,
        "--fps",
        12,
        "--loop",
        "pingpong",
        "-o",
        out,
    )
    assert result.exit_code == 0, result.output
    frames = read_video_frames(out)
    assert frames.shape == (10, tiny_G.img_resolution, tiny_G.img_resolution, 3)

    # pingpong: frame 6 replays frame 4 and frame 9 replays frame 1 (up to codec noise):
    # among the forward frames 0-5, those are the nearest ones.
    def nearest(k):
        dists = [np.abs(frames[k].astype(int) - frames[j].astype(int)).mean() for j in range(6)]
        return int(np.argmin(dists))

    assert nearest(6) == 4
    assert nearest(9) == 1


def test_apply_composes_micromotions(tmp_path, gen_file, mm_file, tiny_G):
    other = Micromotion(
        direction=torch.randn(tiny_G.num_ws, tiny_G.w_dim) * 0.2,
        mask=torch.ones(tiny_G.num_ws, dtype=torch.bool),
        metadata={"name": "b"},
    )
    other_file = other.save(tmp_path / "b.safetensors")
    out = tmp_path / "both.png"
    result = run(
        "apply",
        mm_file,
        "--micromotion",
        other_file,
        "--strength",
        1.5,
        "--strength",
        -2,
        "--generator",
        gen_file,
        "--seed",
        0,
        "--frames",
        3,
        "-o",
        out,
    )
    assert result.exit_code == 0, result.output
    R = tiny_G.img_resolution
    last = np.asarray(Image.open(out).convert("RGB"))[:, 2 * R :]
    w = sample_ws(tiny_G, [0], truncation_psi=0.7)[0]
    code = w + 1.5 * Micromotion.load(mm_file).direction - 2 * other.direction
    assert_same_image(last, to_uint8(tiny_G.synthesis(code[None]))[0])


def test_apply_bad_inputs(tmp_path, gen_file, mm_file):
    out = tmp_path / "o.mp4"
    base = ["--generator", gen_file, "-o", out]
    assert_user_error(
        run("apply", tmp_path / "none.safetensors", "--seed", 1, *base), "no such file"
    )
    for bad in ("nan", "inf"):
        assert_user_error(
            run("apply", mm_file, "--seed", 1, "--strength", bad, *base), "must be a finite number"
        )
    assert_user_error(
        run("apply", mm_file, "--seed", 1, "--layers", "0-99999999999", *base), "out of range"
    )
    assert_user_error(run("apply", mm_file, "--seed", 1, "--device", "mps", *base), "--device mps")
    assert_user_error(run("apply", mm_file, *base), "exactly one of --image PHOTO, --latent")
    assert_user_error(
        run("apply", mm_file, "--seed", 1, "--strength", 1, "--strength", 2, *base),
        "2 --strength values for 1 micromotions",
    )
    np.save(tmp_path / "bad.npy", np.zeros((3, 4)))
    assert_user_error(
        run("apply", mm_file, "--latent", tmp_path / "bad.npy", *base),
        "bad.npy: code of shape [3, 4] does not fit",
    )
    nan = np.full((1, 8, 10), np.nan, np.float32)
    np.save(tmp_path / "nan.npy", nan)
    assert_user_error(run("apply", mm_file, "--latent", tmp_path / "nan.npy", *base), "NaN")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))
    assert_user_error(run("apply", mm_file, "--latent", tmp_path / "obj.npy", *base), "obj.npy")
    big = Micromotion(
        direction=torch.zeros(18, 512),
        mask=torch.ones(18, dtype=torch.bool),
        metadata={"name": "ffhq-only"},
    )
    assert_user_error(
        run("apply", big.save(tmp_path / "big.safetensors"), "--seed", 1, *base),
        "is for W+ of [18, 512]",
    )
    assert_user_error(
        run("apply", mm_file, "--seed", 1, "--generator", gen_file, "-o", tmp_path / "o.avi"),
        "must end in .mp4, .gif or .png",
    )
    (tmp_path / "f").write_text("")
    assert_user_error(
        run("apply", mm_file, "--seed", 1, "--generator", gen_file, "-o", tmp_path / "f" / "o.mp4"),
        "is not a directory",
    )
    assert not out.exists()
    assert not list(tmp_path.glob(".*.part"))


def test_apply_official_direction_on_an_ffhq_shaped_generator(tmp_path):
    """The paper's smile direction drives a (randomly initialised) FFHQ-shaped network."""
    smile = REFERENCE / "smile.d_latent.pt"
    if not smile.is_file():
        pytest.skip("../shared/reference is not beside the repository")
    G = tiny_generator(0, img_resolution=8, channels=(8, 8), w_dim=512, z_dim=512)
    # 8 px has 4 W+ entries; the official directions have 18 -> a clear mismatch error.
    gen = save_generator(G, tmp_path / "g8.safetensors")
    assert_user_error(
        run("apply", smile, "--seed", 0, "--generator", gen, "-o", tmp_path / "s.gif"),
        "is for W+ of [18, 512], but the generator has [4, 512]",
    )


# ----------------------------------------------------------------------------- import / info


def test_import_official_and_info(tmp_path):
    smile = REFERENCE / "smile.d_latent.pt"
    if not smile.is_file():
        pytest.skip("../shared/reference is not beside the repository")
    out = tmp_path / "smile.safetensors"
    result = run("import-official", smile, "-o", out, "--name", "smile")
    assert result.exit_code == 0, result.output
    raw = torch.load(smile, map_location="cpu", weights_only=True)
    assert torch.equal(Micromotion.load(out).direction, raw.detach()[0])
    info = run("info", out, "--json")
    assert info.exit_code == 0
    summary = json.loads(info.output)
    assert summary["num_ws"] == 18 and summary["metadata"]["source"] == "official"
    assert summary["norm"] == pytest.approx(raw.norm().item(), rel=1e-5)
    assert_user_error(
        run("import-official", smile, "-o", tmp_path / "x.npy"), "must end in .safetensors"
    )
    assert_user_error(run("info", tmp_path / "nothing.safetensors"), "no such file")


# ----------------------------------------------------------------------------- discover latents


def test_discover_latents_recovers_a_planted_direction(tmp_path):
    g = torch.Generator().manual_seed(0)
    num_ws, w_dim, n = 6, 32, 11
    d_true = torch.randn(num_ws, w_dim, generator=g)
    w0 = torch.randn(num_ws, w_dim, generator=g)
    t = torch.linspace(0, 1, n)[:, None, None]
    anchors = w0 + t * d_true + 0.01 * torch.randn(n, num_ws, w_dim, generator=g)
    anchors[5, :, :3] += 25.0  # a sparse outlier, which robust PCA should absorb
    np.save(tmp_path / "anchors.npy", anchors.numpy())
    out = tmp_path / "planted.safetensors"
    result = run("discover", "latents", tmp_path / "anchors.npy", "-o", out, "--layers", "0-3")
    assert result.exit_code == 0, result.output
    mm = Micromotion.load(out)
    cos = torch.nn.functional.cosine_similarity(mm.direction.flatten(), d_true.flatten(), dim=0)
    assert cos > 0.99
    assert mm.metadata["source"] == "latents" and mm.metadata["rank"] == 4
    assert mm.metadata["layers"] == "0-3"
    assert mm.anchors.shape == (n, num_ws, w_dim) and mm.basis.shape == (num_ws, 4, w_dim)
    text = run("info", out)
    assert text.exit_code == 0 and "singular values" in text.output and "layers 0-3" in text.output


def test_discover_latents_bad_inputs(tmp_path):
    out = tmp_path / "o.safetensors"
    np.save(tmp_path / "two.npy", np.zeros((2, 4, 8), np.float32))
    assert_user_error(
        run("discover", "latents", tmp_path / "two.npy", "-o", out), "at least 3 anchors"
    )
    np.save(tmp_path / "flat.npy", np.zeros((5, 8), np.float32))
    assert_user_error(
        run("discover", "latents", tmp_path / "flat.npy", "-o", out), "[n, num_ws, w_dim]"
    )
    bad = np.zeros((4, 2, 8), np.float32)
    bad[1, 0, 0] = np.inf
    np.save(tmp_path / "inf.npy", bad)
    assert_user_error(run("discover", "latents", tmp_path / "inf.npy", "-o", out), "NaN or inf")
    assert_user_error(run("discover", "latents", tmp_path / "none.npy", "-o", out), "no such file")
    (tmp_path / "text.npy").write_text("hello")
    assert_user_error(
        run("discover", "latents", tmp_path / "text.npy", "-o", out), "not a .npy array"
    )
    np.save(tmp_path / "ok.npy", np.random.rand(4, 2, 8).astype(np.float32))
    assert_user_error(
        run("discover", "latents", tmp_path / "ok.npy", "-o", out, "--rank", "x"), "--rank"
    )
    assert_user_error(run("discover", "latents", tmp_path / "ok.npy", "-o", out, "--layers", "0-9"))
    (tmp_path / "afile").write_text("")
    assert_user_error(
        run("discover", "latents", tmp_path / "ok.npy", "-o", tmp_path / "afile" / "o.safetensors"),
        "cannot write here",
    )
    assert not out.exists()


def test_apply_layers_leave_other_layers_still(tmp_path, gen_file, mm_file, tiny_G):
    out = tmp_path / "layers.png"
    result = run(
        "apply",
        mm_file,
        "--generator",
        gen_file,
        "--seed",
        2,
        "--frames",
        2,
        "--strength",
        3,
        "--layers",
        "2-3",
        "-o",
        out,
    )
    assert result.exit_code == 0, result.output
    R = tiny_G.img_resolution
    last = np.asarray(Image.open(out).convert("RGB"))[:, R:]
    d = Micromotion.load(mm_file).direction
    w = sample_ws(tiny_G, [2], truncation_psi=0.7)[0]
    masked = w.clone()
    masked[2:4] += 3 * d[2:4]
    assert_same_image(last, to_uint8(tiny_G.synthesis(masked[None]))[0])
    everywhere = to_uint8(tiny_G.synthesis((w + 3 * d)[None]))[0]
    assert np.abs(last.astype(int) - everywhere.astype(int)).max() > 10


def test_outputs_are_readable_by_others(tmp_path, gen_file):
    import os
    import stat

    old = os.umask(0o022)
    try:
        result = run(
            "generate", "--generator", gen_file, "--seeds", "0", "--outdir", tmp_path / "o"
        )
        assert result.exit_code == 0
        mm = Micromotion(direction=torch.ones(2, 3), mask=torch.ones(2, dtype=torch.bool))
        mm.save(tmp_path / "o" / "mm.safetensors")
    finally:
        os.umask(old)
    for name in ("seed0000.png", "latents.npy", "generate.json", "mm.safetensors"):
        assert stat.S_IMODE((tmp_path / "o" / name).stat().st_mode) == 0o644


def test_seed_and_npy_errors(tmp_path, gen_file, mm_file):
    out = tmp_path / "o"
    assert_user_error(
        run(
            "generate", "--generator", gen_file, "--seeds", "99999999999999999999", "--outdir", out
        ),
        "seeds go up to",
    )
    np.savez(tmp_path / "w.npz", a=np.zeros(3))
    assert_user_error(
        run(
            "apply",
            mm_file,
            "--generator",
            gen_file,
            "--latent",
            tmp_path / "w.npz",
            "-o",
            tmp_path / "c.png",
        ),
        "is an .npz archive",
    )
    assert_user_error(
        run(
            "apply",
            mm_file,
            "--generator",
            gen_file,
            "--latent",
            gen_file,
            "-o",
            tmp_path / "c.png",
        ),
        "not a .npy array",
    )
    assert not out.exists()


def test_a_directory_does_not_hide_a_zoo_name(tmp_path, monkeypatch, closed_port, default_zoo):
    """A folder called like a zoo entry (a dataset, the paper's pregen_latents/) in the cwd."""
    url = f"http://127.0.0.1:{closed_port}/g.pkl"
    default_zoo.register(zoo_entry([url], name="shadowed", filename="g.pkl"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shadowed").mkdir()
    result = run("generate", "--generator", "shadowed", "--outdir", tmp_path / "o")
    assert_user_error(result, "could not download shadowed")


def test_discover_latents_with_the_papers_rpca(tmp_path):
    """--rpca paper reproduces the authors' robust PCA settings, recorded in the file."""
    g = torch.Generator().manual_seed(1)
    anchors = torch.randn(9, 4, 24, generator=g) + torch.linspace(0, 1, 9)[:, None, None] * 3
    np.save(tmp_path / "a.npy", anchors.numpy())
    outs = {}
    for rpca in ("paper", "converged"):
        out = tmp_path / f"{rpca}.safetensors"
        result = run("discover", "latents", tmp_path / "a.npy", "--rpca", rpca, "-o", out)
        assert result.exit_code == 0, result.output
        outs[rpca] = Micromotion.load(out)
        assert outs[rpca].metadata["rpca_settings"] == rpca
    expected = Micromotion.from_anchors(anchors, rpca_kwargs={"mu": "paper", "tol": "paper"})
    torch.testing.assert_close(outs["paper"].direction, expected.direction)
    # metadata["rpca"] is (iterations, converged, residual) per layer
    paper_iters = max(outs["paper"].metadata["rpca"][0])
    converged_iters = max(outs["converged"].metadata["rpca"][0])
    assert paper_iters < converged_iters  # the paper's rule stops early


def test_info_plot_draws_a_micromotion_and_refuses_what_it_cannot(tmp_path):
    G = tiny_generator(0)
    anchors = torch.randn(6, G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(0))
    mm = Micromotion.from_anchors(anchors, rank=2, layers="0-3", name="wave")
    mm.save(tmp_path / "wave.safetensors")
    result = run("info", tmp_path / "wave.safetensors", "--plot", tmp_path / "wave.png")
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / 'wave.png'}" in result.output
    image = Image.open(tmp_path / "wave.png")
    assert image.format == "PNG" and image.size[0] == 720
    embedded = json.loads(image.text["micromotion"])
    assert embedded["name"] == "wave" and len(embedded["per_layer_norm"]) == G.num_ws
    np.testing.assert_allclose(embedded["per_layer_norm"][:4], mm.direction[:4].norm(dim=1), 1e-5)
    assert embedded["per_layer_norm"][4:] == [0.0] * (G.num_ws - 4)  # the layers it does not move
    save_generator(G, tmp_path / "g.safetensors")
    assert_user_error(run("info", tmp_path / "g.safetensors", "--plot", tmp_path / "g.png"),
                      "a generator")  # fmt: skip
    assert_user_error(
        run("info", tmp_path / "wave.safetensors", "--plot", tmp_path / "wave.safetensors"),
        "input",
    )
    assert Micromotion.load(tmp_path / "wave.safetensors").name == "wave"  # untouched
    assert not (tmp_path / "g.png").exists()
