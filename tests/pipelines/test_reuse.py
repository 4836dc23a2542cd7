"""reuse_networks: pipelines called many times in one process load each network once."""

from __future__ import annotations

import os

import numpy as np

from helpers import tiny_generator
from micromotion.pipelines import _load
from micromotion.pipelines._load import NetworkCache, reuse_networks
from micromotion.pipelines.generate import generate
from micromotion.weights.generator import save_generator


def _count_loads(monkeypatch) -> list[str]:
    loads: list[str] = []
    real = _load.load_generator

    def counting(spec, **kwargs):
        loads.append(str(spec))
        return real(spec, **kwargs)

    monkeypatch.setattr(_load, "load_generator", counting)
    return loads


def test_a_generator_is_loaded_once_inside_the_block_and_on_each_call_outside(
    tmp_path, monkeypatch
):
    path = tmp_path / "g.safetensors"
    save_generator(tiny_generator(0), path)
    loads = _count_loads(monkeypatch)
    with reuse_networks() as cache:
        a = generate(generator=path, seeds=[0, 1], outdir=tmp_path / "a", device="cpu")
        b = generate(generator=path, seeds=[0, 1], outdir=tmp_path / "b", device="cpu")
    assert loads == [str(path)] and cache.kinds() == ["generator"]
    # The reused network gives the same result as a fresh one.
    np.testing.assert_array_equal(
        np.load(a.outdir / "latents.npy"), np.load(b.outdir / "latents.npy")
    )
    generate(generator=path, seeds=[0], outdir=tmp_path / "c", device="cpu")
    assert len(loads) == 2  # outside the block every call loads again


def test_a_file_that_changes_on_disk_is_loaded_again(tmp_path, monkeypatch):
    path = tmp_path / "g.safetensors"
    save_generator(tiny_generator(0), path)
    loads = _count_loads(monkeypatch)
    cache = NetworkCache()
    with reuse_networks(cache):
        generate(generator=path, seeds=[0], outdir=tmp_path / "a", device="cpu")
    save_generator(tiny_generator(1), path)
    os.utime(path, ns=(1, 1))  # a new modification time even on a coarse clock
    with reuse_networks(cache):  # a cache kept across blocks (a web app's)
        b = generate(generator=path, seeds=[0], outdir=tmp_path / "b", device="cpu")
    assert len(loads) == 2 and len(cache) == 2
    assert b.record["generator_fingerprint"] == tiny_generator(1).fingerprint()
