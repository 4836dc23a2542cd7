"""`micromotion evaluate --compare` with SeFa/GANSpace computed on the fly; faces from a file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from helpers import tiny_generator
from micromotion import save_generator
from micromotion.errors import MicromotionError, ParameterError
from micromotion.pipelines.evaluate import (
    EVAL_GANSPACE_SAMPLES,
    BaselineSpec,
    compare,
    parse_baseline,
)
from micromotion.pipelines.evaluate_plot import _strength
from micromotion.subspace.micromotion import Micromotion
from micromotion.weights.micromotion import load_micromotion

#: Few samples keep the PCA fast; what matters is that both routes draw the same ones.
SAMPLES, SAMPLE_SEED = 300, 3
#: The decoded micromotion moves these layers; the baselines must follow them.
LAYERS = "0-3"


def run(*args):
    from micromotion.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_user_error(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def decoded(G) -> Micromotion:
    g = torch.Generator().manual_seed(7)
    t = torch.linspace(0, 1, 4)[:, None, None]
    anchors = torch.randn(1, G.num_ws, G.w_dim, generator=g) + t * torch.randn(
        1, G.num_ws, G.w_dim, generator=g
    )
    mm = Micromotion.from_anchors(anchors, rank=2).with_layers(LAYERS)
    mm.metadata.update(name="wave")
    return mm


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("baselines")
    G = tiny_generator(0)
    gen = save_generator(G, tmp / "g.safetensors")
    mm_file = decoded(G).save(tmp / "wave.safetensors")
    # What `micromotion baseline` writes today, on the decoded micromotion's layers.
    sefa_file, gs_file = tmp / "sefa0.safetensors", tmp / "gs1.safetensors"
    made = run("baseline", "sefa", "--generator", gen, "--component", 0, "--layers", LAYERS,
               "-o", sefa_file)  # fmt: skip
    assert made.exit_code == 0, made.output
    made = run("baseline", "ganspace", "--generator", gen, "--component", 1, "--layers", LAYERS,
               "--samples", SAMPLES, "--seed", SAMPLE_SEED, "-o", gs_file)  # fmt: skip
    assert made.exit_code == 0, made.output
    faces = tmp / "faces"
    made = run("generate", "--generator", gen, "--seeds", "0-2", "--outdir", faces)
    assert made.exit_code == 0, made.output
    return {"G": G, "generator": gen, "mm_file": mm_file, "sefa_file": sefa_file,
            "gs_file": gs_file, "latents": faces / "latents.npy"}  # fmt: skip


def test_parse_baseline_rule(tmp_path, monkeypatch):
    assert parse_baseline("sefa") == BaselineSpec("sefa", 0)
    assert parse_baseline("ganspace:12") == BaselineSpec("ganspace", 12)
    assert BaselineSpec("sefa", 3).label == "sefa:3"
    for other in ("./sefa", "dir/sefa", "sefa.safetensors", "SEFA", "smile", tmp_path / "sefa"):
        assert parse_baseline(other) is None, other
    for bad in ("sefa:x", "sefa:-1", "sefa:", "ganspace:1.5", "sefa:٣"):
        with pytest.raises(MicromotionError, match="component must be an integer"):
            parse_baseline(bad)
    # a bare name that is also a file here is refused, never silently taken as either
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sefa").write_bytes(b"")
    with pytest.raises(MicromotionError, match=r"\./sefa"):
        parse_baseline("sefa")


def test_compare_file_sefa_ganspace_in_one_command(files, tmp_path):
    out = tmp_path / "cmp.json"
    result = run("evaluate", "--compare", files["mm_file"], "sefa:0", "ganspace:1",
                 "--generator", files["generator"], "--seeds", "0-1", "--frames", 3,
                 "--strength", 1, "--strength", 3, "--strength", 2,
                 "--ganspace-samples", SAMPLES, "--ganspace-seed", SAMPLE_SEED,
                 "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3 micromotions: wave, sefa:0, ganspace:1; 2 face(s)" in result.output
    report = json.loads(out.read_text())
    wave, sefa, gs = report["micromotions"]
    assert [s["label"] for s in report["micromotions"]] == ["wave", "sefa:0", "ganspace:1"]
    assert wave["baseline"] is None
    written_sefa = load_micromotion(files["sefa_file"]).metadata
    written_gs = load_micromotion(files["gs_file"]).metadata
    assert sefa["baseline"]["method"] == "sefa" and sefa["baseline"]["component"] == 0
    assert sefa["baseline"]["layers"] == LAYERS and sefa["baseline"]["layers_from"] == "wave"
    assert sefa["baseline"]["eigenvalue"] == written_sefa["eigenvalue"]
    assert sefa["baseline"]["computed"] is True and sefa["strength"] == 3.0
    assert gs["baseline"]["method"] == "ganspace" and gs["baseline"]["component"] == 1
    assert gs["baseline"]["layers"] == LAYERS
    assert (gs["baseline"]["samples"], gs["baseline"]["seed"]) == (SAMPLES, SAMPLE_SEED)
    assert gs["baseline"]["variance"] == written_gs["variance"]
    assert [s["start"]["seed"] for s in gs["per_start"]] == [0, 1]
    assert gs["summary"]["pixel_step_mean"]["n"] == 2
    # the baselines move exactly the decoded micromotion's layers, so their cosine covers them
    pairs = {(p["a"], p["b"]): p for p in report["transfer_consistency"]["pairs"]}
    assert pairs[("wave", "sefa:0")]["layers"] == [0, 1, 2, 3]

    # The same directions as the files `micromotion baseline` wrote: equal tensors and masks,
    # so the files scored in place of the specs give the same numbers.
    found = compare([files["mm_file"], "sefa:0", "ganspace:1", files["sefa_file"],
                     files["gs_file"]], generator=files["generator"], seeds=[0, 1], frames=3,
                    strength=[1.0, 3.0, 2.0, 3.0, 2.0], ganspace_samples=SAMPLES,
                    ganspace_seed=SAMPLE_SEED, output=tmp_path / "lib.json")  # fmt: skip
    _, on_fly_sefa, on_fly_gs, file_sefa, file_gs = found.micromotions
    for a, b in ((on_fly_sefa, file_sefa), (on_fly_gs, file_gs)):
        assert torch.equal(a.direction, b.direction) and torch.equal(a.mask, b.mask)
    matrix = found.report["transfer_consistency"]["matrix"]
    assert matrix[1][3] == pytest.approx(1.0, abs=1e-9)
    assert matrix[2][4] == pytest.approx(1.0, abs=1e-9)
    sections = found.report["micromotions"]
    assert sections[1]["summary"] == sefa["summary"] == sections[3]["summary"]
    assert sections[2]["summary"] == gs["summary"] == sections[4]["summary"]
    assert sections[3]["baseline"]["computed"] is False  # a file's settings, as it recorded


def test_baselines_alone_move_every_layer(files, tmp_path):
    found = compare(["sefa", "ganspace:0"], generator=files["G"], frames=2, strength=[2.0, 1.0],
                    ganspace_samples=SAMPLES, output=tmp_path / "all.json",
                    plot=tmp_path / "all.png")  # fmt: skip
    assert found.files["plot"].is_file()
    assert [_strength(s) for s in found.report["micromotions"]] == ["2", "1 σ"]
    for section in found.report["micromotions"]:
        assert section["baseline"]["layers"] == f"0-{files['G'].num_ws - 1}"
        assert section["baseline"]["layers_from"] is None
    assert [s["label"] for s in found.report["micromotions"]] == ["sefa:0", "ganspace:0"]
    # a different sample seed is a different estimate, and is recorded as such
    other = compare(["ganspace"], generator=files["G"], frames=2, ganspace_samples=SAMPLES,
                    ganspace_seed=1, output=tmp_path / "other.json")  # fmt: skip
    assert other.report["micromotions"][0]["baseline"]["seed"] == 1
    assert not torch.equal(other.micromotions[0].direction, found.micromotions[1].direction)


def test_a_file_called_sefa_is_reached_as_a_path(files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    decoded(files["G"]).save(tmp_path / "sefa")
    out = tmp_path / "p.json"
    result = run("evaluate", "--compare", "./sefa", "sefa:0", "--generator", files["generator"],
                 "--frames", 2, "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    first, second = json.loads(out.read_text())["micromotions"]
    assert first["label"] == "wave" and first["baseline"] is None
    assert second["label"] == "sefa:0"
    # the bare word is ambiguous while the file is here
    assert_user_error(run("evaluate", "--compare", "sefa", "--generator", files["generator"],
                          "--frames", 2, "-o", tmp_path / "q.json"), "./sefa")  # fmt: skip


def test_latent_rows_are_faces(files, tmp_path):
    common = ("--generator", files["generator"], "--frames", 3, "--strength", 2)
    out = tmp_path / "rows.json"
    result = run("evaluate", "--compare", files["mm_file"], "sefa", "--latent", files["latents"],
                 *common, "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3 face(s)" in result.output
    report = json.loads(out.read_text())
    assert report["starts"] == [{"latent": str(files["latents"]), "index": i} for i in range(3)]
    assert report["latent_sha256"] is not None
    for section in report["micromotions"]:
        assert len(section["per_start"]) == 3 and section["summary"]["pixel_step_mean"]["n"] == 3
    # generate's rows are the faces of its seeds (same truncation): the same scores
    by_seed = tmp_path / "seeds.json"
    result = run("evaluate", "--compare", files["mm_file"], "sefa", "--seeds", "0-2", *common,
                 "-o", by_seed)  # fmt: skip
    assert result.exit_code == 0, result.output
    seeded = json.loads(by_seed.read_text())["micromotions"]
    for rows, seeds in zip(report["micromotions"], seeded, strict=True):
        for a, b in zip(rows["per_start"], seeds["per_start"], strict=True):
            assert a["smoothness"]["pixel_rmse"]["mean"] == pytest.approx(
                b["smoothness"]["pixel_rmse"]["mean"], rel=1e-5
            )
    # --index picks one row as before
    one = tmp_path / "one.json"
    result = run("evaluate", "--compare", files["mm_file"], "--latent", files["latents"],
                 "--index", 1, *common, "-o", one)  # fmt: skip
    assert result.exit_code == 0, result.output
    picked = json.loads(one.read_text())["micromotions"][0]["per_start"]
    assert [p["start"]["index"] for p in picked] == [1]
    assert picked[0]["smoothness"] == report["micromotions"][0]["per_start"][1]["smoothness"]
    # a one-face file is one face; without --compare, several rows still need --index
    np.save(tmp_path / "single.npy", np.load(files["latents"])[:1])
    found = compare([files["mm_file"]], generator=files["generator"], frames=2,
                    latent=tmp_path / "single.npy", output=tmp_path / "s.json")  # fmt: skip
    assert len(found.report["starts"]) == 1
    assert_user_error(run("evaluate", files["mm_file"], "--latent", files["latents"], *common,
                          "-o", tmp_path / "x.json"), "--index")  # fmt: skip


def test_baseline_spec_user_errors(files, tmp_path):
    common = ("--generator", files["generator"], "--frames", 2)
    out = tmp_path / "bad.json"
    w_dim = files["G"].w_dim
    for spec, fragment in (("sefa:x", "sefa:x"), ("sefa:-1", "sefa:-1"), ("ganspace:", "ganspace"),
                           (f"sefa:{w_dim}", f"0-{w_dim - 1}"),
                           (f"ganspace:{w_dim + 5}", f"0-{w_dim - 1}")):  # fmt: skip
        assert_user_error(run("evaluate", "--compare", files["mm_file"], spec, *common, "-o", out),
                          fragment)  # fmt: skip
    assert_user_error(run("evaluate", "--compare", files["mm_file"], "--latent", files["latents"],
                          "--seeds", "0-1", *common, "-o", out), "--seeds", "--latent")  # fmt: skip
    assert not out.exists()
    # the library checks what click's option types check on the command line
    with pytest.raises(ParameterError, match="ganspace_samples"):
        compare(["ganspace"], generator=files["G"], ganspace_samples=1, output=out)
    with pytest.raises(ParameterError, match="ganspace_seed"):
        compare(["ganspace"], generator=files["G"], ganspace_seed=-1, output=out)
    with pytest.raises(ParameterError, match="seeds and latent"):
        compare(["sefa"], generator=files["G"], seeds=[0], latent=files["latents"], output=out)


def test_cli_ganspace_default_is_the_pipelines():
    from micromotion.cli.evaluate import evaluate_cmd

    (option,) = [p for p in evaluate_cmd.params if p.name == "ganspace_samples"]
    assert option.default == EVAL_GANSPACE_SAMPLES
