"""Same inputs, same bytes: files written in separate processes are identical."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

from safetensors import safe_open

SAVE = """
import sys, torch
from micromotion.subspace.micromotion import Micromotion
from micromotion.testing import tiny_generator
from micromotion.weights.generator import save_generator
G = tiny_generator(0)
save_generator(G, sys.argv[1] + "/g.safetensors")
mm = Micromotion(direction=torch.ones(G.num_ws, G.w_dim),
                 mask=torch.ones(G.num_ws, dtype=torch.bool),
                 metadata={"zeta": 1, "alpha": [2, 3], "name": "x"})
mm.save(sys.argv[1] + "/m.safetensors")
"""


def digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_safetensors_files_are_byte_identical_across_processes(tmp_path, monkeypatch):
    # safetensors keeps metadata in a hash map whose order is random per process; we sort it.
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # records carry this time, not now
    runs = []
    for i in range(3):
        folder = tmp_path / str(i)
        folder.mkdir()
        subprocess.run([sys.executable, "-c", SAVE, str(folder)], check=True)
        runs.append(digests(folder))
    assert runs[0] == runs[1] == runs[2] and len(runs[0]) == 2

    from micromotion.subspace.micromotion import Micromotion
    from micromotion.weights.generator import load_generator

    mm = Micromotion.load(tmp_path / "0" / "m.safetensors")  # still a valid file
    assert mm.metadata["zeta"] == 1 and mm.metadata["alpha"] == [2, 3]
    load_generator(tmp_path / "0" / "g.safetensors")
    with safe_open(tmp_path / "0" / "g.safetensors", "pt") as fh:
        assert json.loads(fh.metadata()["provenance"])["created"].startswith("2023-11-14T22:13")
