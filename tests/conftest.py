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
