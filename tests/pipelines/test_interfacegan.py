"""`micromotion baseline interfacegan`: a planted boundary is recovered, from labels or scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from helpers import TINY_CLIP, tiny_clip_module, tiny_generator
from micromotion import save_generator
from micromotion.errors import MicromotionError
from micromotion.pipelines.baselines import interfacegan_direction
from micromotion.subspace.baselines import linear_boundary, select_by_score
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


def planted(n: int = 300, dim: int = 10, seed: int = 0):
    """Codes around an offset mean, labelled by the side of a planted hyperplane."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(dim, generator=g, dtype=torch.float64)
    u = u / u.norm()
    x = torch.randn(n, dim, generator=g, dtype=torch.float64) + 2.0  # off-centre, as w is
    score = (x - 2.0) @ u
    return x, u, score


@pytest.mark.parametrize("method", ["svm", "logistic"])
def test_linear_boundary_recovers_the_planted_normal(method):
    x, u, score = planted()
    found = linear_boundary(x, (score > 0.2).double(), method=method)
    assert float(found.normal @ u) > 0.95  # and it points toward label 1
    assert found.train_accuracy > 0.95 and found.val_accuracy is not None
    assert found.num_positive + found.num_negative == 300 and found.num_train == 210
    # scores: the top and bottom 20% are the classes
    index, labels = select_by_score(score, 0.2)
    assert len(index) == 120 and labels[:60].eq(1).all() and score[index[:60]].min() > 0
    assert float(linear_boundary(x[index], labels, method=method).normal @ u) > 0.95


def test_linear_boundary_refuses_bad_data():
    x, _, score = planted(20)
    with pytest.raises(MicromotionError, match="0 or 1"):
        linear_boundary(x, score)
    with pytest.raises(MicromotionError, match="need ≥ 2"):
        linear_boundary(x, torch.zeros(20))
    x[3, 2] = float("nan")
    with pytest.raises(MicromotionError, match="NaN"):
        linear_boundary(x, (score > 0).double())
    with pytest.raises(MicromotionError, match="per class"):
        select_by_score(score, 0.02)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("interfacegan")
    G = tiny_generator(0)
    gen = save_generator(G, tmp / "g.safetensors")
    x, u, score = planted(400, G.w_dim)
    np.save(tmp / "w.npy", x.float().numpy())
    (tmp / "labels.csv").write_text(
        "smiling,score\n" + "".join(f"{int(s > 0)},{float(s):.6f}\n" for s in score)
    )
    return {"G": G, "generator": gen, "u": u, "x": x, "score": score, "tmp": tmp}


def test_interfacegan_from_labels_and_scores(files, tmp_path):
    out = tmp_path / "smile.safetensors"
    common = ("--generator", files["generator"], "--device", "cpu", "--codes",
              files["tmp"] / "w.npy", "--labels", files["tmp"] / "labels.csv")  # fmt: skip
    result = run("baseline", "interfacegan", *common, "--column", "smiling", "--layers", "0-3",
                 "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "interfacegan svm in W" in result.output and "validation accuracy" in result.output
    mm = Micromotion.load(out)
    assert float(mm.direction[0].double() @ files["u"]) > 0.95
    torch.testing.assert_close(mm.direction.norm(dim=1), torch.ones(mm.num_ws))
    meta = mm.metadata
    assert meta["method"] == "interfacegan" and meta["layers"] == "0-3"
    assert meta["val_accuracy"] > 0.9 and meta["data"]["labels_kind"] == "0/1"
    assert meta["data"]["column"] == "smiling" and len(meta["data"]["codes_sha256"]) == 64
    assert meta["generator_fingerprint"] == files["G"].fingerprint()
    # the scores column: InterFaceGAN's top and bottom shares
    scored = interfacegan_direction(files["G"], output=tmp_path / "s.safetensors",
                                    codes=files["tmp"] / "w.npy",
                                    labels=files["tmp"] / "labels.csv", column="score",
                                    ratio=0.25, classifier="logistic")  # fmt: skip
    assert float(scored.micromotion.direction[0].double() @ files["u"]) > 0.95
    assert scored.micromotion.metadata["data"]["ratio"] == 0.25
    assert scored.boundary is not None and scored.boundary.num_positive == 100


def test_interfacegan_per_layer_on_w_plus(files, tmp_path):
    G = files["G"]
    g = torch.Generator().manual_seed(8)
    x = torch.randn(300, G.num_ws, G.w_dim, generator=g, dtype=torch.float64)
    v = torch.randn(G.w_dim, generator=g, dtype=torch.float64)
    v = v / v.norm()
    labels = (x[:, 2] @ v > 0).long()  # only layer 2 carries the attribute
    np.save(tmp_path / "wp.npy", x.numpy())
    (tmp_path / "l.csv").write_text("".join(f"{int(a)}\n" for a in labels))
    found = interfacegan_direction(G, output=tmp_path / "wp.safetensors", codes=tmp_path / "wp.npy",
                                   labels=tmp_path / "l.csv")  # fmt: skip
    mm = found.micromotion
    assert mm.metadata["space"].startswith("W+")
    assert float(mm.direction[2].double() @ v) > 0.95
    acc = mm.metadata["val_accuracy"]
    assert acc[2] > 0.9 and min(acc[:2] + acc[3:]) < 0.8  # other layers cannot separate them


def test_interfacegan_from_prompts_with_clip(files, tmp_path):
    cfg, weights = tmp_path / "clip.json", tmp_path / "clip.pt"
    cfg.write_text(json.dumps(TINY_CLIP))
    torch.save(tiny_clip_module(1).state_dict(), weights)
    out = tmp_path / "p.safetensors"
    result = run("baseline", "interfacegan", "--generator", files["generator"], "--device", "cpu",
                 "--prompts", "a smiling face", "a neutral face", "--samples", 24, "--ratio",
                 0.25, "--clip", f"{cfg}:{weights}", "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    mm = Micromotion.load(out)
    data = mm.metadata["data"]
    assert data["prompts"] == ["a smiling face", "a neutral face"] and data["seeds"] == "0-23"
    assert data["labels_kind"] == "scores" and data["clip"] == f"{cfg}:{weights}"
    # The scored faces are saved: one row per seed, and a refit from them needs no CLIP.
    import hashlib

    for role, name in (("codes", "p_codes.npy"), ("scores", "p_scores.csv")):
        digest = hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        assert data["saved"][role] == {"file": name, "sha256": digest}
    assert "p_codes.npy and p_scores.csv" in result.output
    codes = np.load(tmp_path / "p_codes.npy")
    assert codes.shape == (24, files["G"].w_dim) and codes.dtype == np.float32
    comment, *rows = (tmp_path / "p_scores.csv").read_text().splitlines()
    made = json.loads(comment.removeprefix("# "))  # the CSV says what made it
    assert made["prompts"] == ["a smiling face", "a neutral face"] and made["seeds"] == "0-23"
    assert made["generator_fingerprint"] == files["G"].fingerprint()
    assert rows[0] == "seed,score" and [r.split(",")[0] for r in rows[1:]] == [
        str(s) for s in range(24)
    ]
    scores = [float(r.split(",")[1]) for r in rows[1:]]
    assert len(set(scores)) == 24  # real, distinct CLIP scores
    # The printed command fits the same direction (with the seed of the split and the ratio).
    again = tmp_path / "refit.safetensors"
    printed = result.output.split("the same fit without CLIP: ", 1)[1].split()
    assert "--seed" in printed and "--ratio" in printed
    refit = run("baseline", "interfacegan", "--generator", files["generator"], "--device", "cpu",
                *printed, "-o", again)  # fmt: skip
    assert refit.exit_code == 0, refit.output
    assert torch.equal(Micromotion.load(again).direction, mm.direction)


def test_interfacegan_user_errors(files, tmp_path):
    tmp = files["tmp"]
    common = ("--generator", files["generator"], "--device", "cpu")
    out = tmp_path / "o.safetensors"
    (tmp_path / "short.csv").write_text("1\n0\n1\n")
    assert_user_error(run("baseline", "interfacegan", *common, "--codes", tmp / "w.npy",
                          "--labels", tmp_path / "short.csv", "-o", out),
                      "3 rows for 400")  # fmt: skip
    assert_user_error(run("baseline", "interfacegan", *common, "--codes", tmp / "w.npy",
                          "--labels", tmp / "labels.csv", "-o", out), "--column")  # fmt: skip
    bad = files["x"].clone()
    bad[5, 1] = float("inf")
    np.save(tmp_path / "bad.npy", bad.numpy())
    (tmp_path / "l.csv").write_text("".join(f"{i % 2}\n" for i in range(400)))
    assert_user_error(run("baseline", "interfacegan", *common, "--codes", tmp_path / "bad.npy",
                          "--labels", tmp_path / "l.csv", "-o", out), "NaN or inf")  # fmt: skip
    (tmp_path / "nan.csv").write_text("0\nnan\n" * 200)
    assert_user_error(run("baseline", "interfacegan", *common, "--codes", tmp / "w.npy",
                          "--labels", tmp_path / "nan.csv", "-o", out), "finite")  # fmt: skip
    assert_user_error(run("baseline", "interfacegan", *common, "-o", out), "--prompts")
    assert_user_error(run("baseline", "interfacegan", *common, "--codes", tmp / "w.npy",
                          "--labels", tmp_path / "l.csv", "--ratio", "nan", "-o", out),
                      "--ratio")  # fmt: skip
    assert not out.exists()
