"""Shared fixtures: tiny, fully randomised generators built by our own code."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch

from micromotion.networks.stylegan2 import Generator, GeneratorConfig

# Tiny test networks gain nothing from threads, and OpenMP threads spinning against a busy
# machine made single steps 7x slower: one thread keeps the suite fast and steady.
torch.set_num_threads(1)

SHARED = Path(__file__).resolve().parents[2] / "shared"
REFERENCE = SHARED / "reference"


def randomise(G: Generator, seed: int = 0) -> Generator:
    """Give *every* parameter and stored buffer a random value.

    Biases and noise strengths start at zero and w_avg at zero in a fresh network, which
    would hide mistakes in how they are loaded or applied.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in G.named_parameters():
            scale = 0.5 if "bias" in name or "noise_strength" in name else 1.0
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
            if name.endswith("affine.bias"):
                p.add_(1.0)  # keep styles away from zero, as trained networks have them
        for name, b in G.named_buffers():
            if name.endswith(("noise_const", "w_avg")):
                b.copy_(torch.randn(b.shape, generator=gen))
    return G.eval()


def tiny_config(**overrides) -> GeneratorConfig:
    """A 32 px generator with a few channels: fast on CPU, exercises every block type."""
    kwargs = dict(
        img_resolution=32,
        channels=(16, 16, 12, 8),
        z_dim=12,
        w_dim=10,
        mapping_layers=2,
    )
    kwargs.update(overrides)
    return GeneratorConfig(**kwargs)


def tiny_generator(seed: int = 0, **overrides) -> Generator:
    """A fully randomised tiny generator."""
    torch.manual_seed(seed)
    return randomise(Generator(tiny_config(**overrides)), seed)


@pytest.fixture
def tiny_G() -> Generator:
    return tiny_generator(0)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Never touch the user's cache: every test gets its own MICROMOTION_HOME."""
    monkeypatch.setenv("MICROMOTION_HOME", str(tmp_path_factory.mktemp("mmhome")))


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def zoo_entry(
    urls, *, sha256=None, name="thing", kind="generator", aliases=(), filename="thing.bin"
):
    """A test zoo entry for ``urls``."""
    from micromotion.zoo import ZooEntry

    return ZooEntry(
        name=name,
        kind=kind,
        urls=tuple(urls),
        filename=filename,
        sha256=sha256,
        format="raw",
        license="test",
        origin="test",
        description="test asset",
        aliases=aliases,
    )


@pytest.fixture
def default_zoo(monkeypatch):
    """A copy of the default registry that the test may change (the CLI uses it)."""
    from micromotion import zoo
    from micromotion.zoo import Zoo

    copy = Zoo(zoo.DEFAULT_ZOO.list_entries())
    monkeypatch.setattr(zoo, "DEFAULT_ZOO", copy)
    return copy
