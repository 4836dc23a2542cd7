"""Shared fixtures: tiny, fully randomised generators built by our own code."""

from __future__ import annotations

import socket
import threading

import pytest
import torch

from helpers import tiny_generator
from local_http import LocalServer
from micromotion.networks.stylegan2 import Generator

# Tiny test networks gain nothing from threads, and OpenMP threads spinning against a busy
# machine made single steps 7x slower: one thread keeps the suite fast and steady.
torch.set_num_threads(1)


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


@pytest.fixture
def default_zoo(monkeypatch):
    """A copy of the default registry that the test may change (the CLI uses it)."""
    from micromotion.hub import Zoo, entries

    copy = Zoo(entries.DEFAULT_ZOO.list_entries())
    monkeypatch.setattr(entries, "DEFAULT_ZOO", copy)
    return copy


@pytest.fixture
def lpips_cached(default_zoo):
    """Both LPIPS-VGG files in this test's cache, so the pipelines pick LPIPS.

    The real VGG16 weights cannot be downloaded here, so the VGG16 entry is registered
    without a pinned hash and a file of random VGG16 weights placed in the cache by hand,
    which the zoo trusts on first use. The linear layers are the real ones from the lpips
    package.
    """
    import shutil
    from dataclasses import replace
    from pathlib import Path

    from micromotion import hub as zoo
    from micromotion.networks.lpips import LPIPS
    from micromotion.weights.lpips import LIN_ENTRY, VGG16_ENTRY

    lpips_pkg = pytest.importorskip("lpips")
    lin_file = Path(lpips_pkg.__file__).parent / "weights" / "v0.1" / "vgg.pth"
    vgg_entry = replace(zoo.get(VGG16_ENTRY), sha256=None)
    default_zoo.unregister(VGG16_ENTRY)
    default_zoo.register(vgg_entry)
    model = LPIPS()
    vgg_state = {k.removeprefix("vgg."): v for k, v in model.state_dict().items() if "vgg." in k}
    zoo.cache_path(vgg_entry).parent.mkdir(parents=True)
    torch.save(vgg_state, zoo.cache_path(vgg_entry))
    lin_cache = zoo.cache_path(zoo.get(LIN_ENTRY))
    lin_cache.parent.mkdir(parents=True)
    shutil.copyfile(lin_file, lin_cache)
    return default_zoo


@pytest.fixture
def http_server():
    """A :class:`local_http.LocalServer` on 127.0.0.1, shut down after the test."""
    server = LocalServer()
    # A short poll interval: shutdown() waits for one, and there are many tests.
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.httpd.shutdown()
    server.httpd.server_close()
    thread.join(5)
