"""``micromotion batch`` on the command line: a summary, the exit status, one-line errors."""

from __future__ import annotations

import builtins
import json

import pytest
import torch
from click.testing import CliRunner

from helpers import tiny_generator
from micromotion.subspace.micromotion import Micromotion
from micromotion.weights.generator import save_generator


def run(*args):
    from micromotion.cli import main

    return CliRunner().invoke(main, ["batch", *map(str, args)], catch_exceptions=False)


def assert_user_error(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def folder(tmp_path):
    G = tiny_generator(0)
    save_generator(G, tmp_path / "g.safetensors")
    d = torch.randn(G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(0))
    Micromotion(direction=d, mask=torch.ones(G.num_ws, dtype=torch.bool)).save(
        tmp_path / "up.safetensors"
    )
    return tmp_path


def write(folder, rows):
    path = folder / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_batch_prints_a_summary_and_exits_1_when_a_row_failed(folder):
    rows = [
        {"job": "animate", "name": "a", "seed": 0, "micromotion": "up.safetensors", "frames": 3,
         "format": "png", "strength": 0.5},
        {"job": "animate", "name": "b", "seed": 1, "micromotion": "up.safetensors", "frames": 0},
    ]  # fmt: skip
    manifest = write(folder, rows)
    args = (manifest, "-o", folder / "out", "--generator", folder / "g.safetensors",
            "--device", "cpu")  # fmt: skip
    result = run(*args)
    assert result.exit_code == 1
    assert "2 rows: 1 done, 0 skipped (finished before), 1 failed" in result.stdout
    assert "failed: row 2: frames 0: need 2 to 10000 frames" in result.stderr
    assert (folder / "out" / "a" / "a.png").is_file() and not (folder / "out" / "b").exists()
    manifest.write_text(json.dumps(rows[0]) + "\n")  # the bad row fixed (removed)
    again = run(*args)
    assert again.exit_code == 0 and "1 rows: 0 done, 1 skipped" in again.stdout


def test_bad_manifests_and_options_are_one_line(folder):
    assert_user_error(run(folder / "none.csv", "-o", folder / "out"), "no such manifest")
    manifest = write(folder, [{"job": "animate", "seed": 0, "micromotion": "smile"}])
    assert_user_error(
        run(manifest, "-o", folder / "out", "--address", "127.0.0.1:6379"),
        "--address needs --engine ray",
    )
    (folder / "file").write_text("x")
    # The report would replace the manifest: refused, the manifest untouched.
    (folder / "out").mkdir()
    inside = folder / "out" / "batch.jsonl"
    inside.write_text(manifest.read_text())
    assert_user_error(run(inside, "-o", folder / "out"), "batch.jsonl", "input")
    assert inside.read_text() == manifest.read_text()
    not_a_folder = run(manifest, "-o", folder / "file")
    assert not_a_folder.exit_code == 2 and "is a file" in not_a_folder.stderr
    usage = run(manifest, "-o", folder / "out", "--engine", "spark")
    assert usage.exit_code == 2 and usage.stderr.startswith("error: ")


def test_the_ray_engine_without_ray_says_how_to_install_it(folder, monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    manifest = write(folder, [{"job": "animate", "seed": 0, "micromotion": "smile"}])
    assert_user_error(
        run(manifest, "-o", folder / "out", "--engine", "ray"), 'pip install "micromotion[ray]"'
    )
    assert not (folder / "out").exists()  # refused before anything was written
