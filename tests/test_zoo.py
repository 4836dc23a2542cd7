"""The zoo and downloads, against a real HTTP server on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading
from dataclasses import replace
from typing import ClassVar

import pytest
import torch
from click.testing import CliRunner

from conftest import REFERENCE
from micromotion import DownloadError, MicromotionError, zoo
from micromotion.direction import Micromotion, load_micromotion
from micromotion.zoo import Zoo, ZooEntry

PAYLOAD = b"micromotion test payload\n" * 4000
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}
    hits: ClassVar[list[str]] = []

    def do_GET(self):
        self.hits.append(self.path)
        if self.path == "/truncated":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 3])
            self.wfile.flush()
            self.close_connection = True
            return
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.files = {"/good.bin": PAYLOAD}
    _Handler.hits = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed once the with-block ends: connections are refused


def entry(urls, sha256=PAYLOAD_SHA, name="thing"):
    return ZooEntry(
        name=name,
        kind="generator",
        urls=tuple(urls),
        filename="thing.bin",
        sha256=sha256,
        format="raw",
        license="test",
        origin="test",
        description="test asset",
    )


def _leftovers(path):
    return [p.name for p in path.parent.iterdir() if p.name.endswith(".part")]


def test_good_file_then_cache_hit(server):
    base, handler = server
    reg = Zoo([entry([f"{base}/good.bin"])])
    path = zoo.fetch("thing", zoo=reg, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert path == zoo.home() / "zoo" / "thing" / "thing.bin"
    assert zoo.fetch("thing", zoo=reg, progress=False) == path
    assert handler.hits == ["/good.bin"]  # the second fetch was a verified cache hit


def test_wrong_hash(server):
    base, _ = server
    reg = Zoo([entry([f"{base}/good.bin"], sha256="0" * 64)])
    with pytest.raises(DownloadError, match=r"sha256 mismatch: expected 0{64}, got " + PAYLOAD_SHA):
        zoo.fetch("thing", zoo=reg, progress=False)
    path = zoo.cache_path(reg.get("thing"))
    assert not path.exists() and not _leftovers(path)


def test_truncated(server):
    base, _ = server
    reg = Zoo([entry([f"{base}/truncated"])])
    with pytest.raises(DownloadError, match="truncated") as info:
        zoo.fetch("thing", zoo=reg, progress=False)
    path = zoo.cache_path(reg.get("thing"))
    assert str(path) in str(info.value)  # says where to put a hand-downloaded copy
    assert not path.exists() and not _leftovers(path)


def test_404_names_url_and_destination(server):
    base, _ = server
    reg = Zoo([entry([f"{base}/missing.bin"])])
    with pytest.raises(DownloadError) as info:
        zoo.fetch("thing", zoo=reg, progress=False)
    message = str(info.value)
    assert f"{base}/missing.bin" in message and "HTTP 404" in message
    assert f"save it as {zoo.cache_path(reg.get('thing'))}" in message
    assert "\n" not in message


def test_no_server(closed_port):
    url = f"http://127.0.0.1:{closed_port}/x.bin"
    reg = Zoo([entry([url])])
    with pytest.raises(DownloadError, match="unreachable") as info:
        zoo.fetch("thing", zoo=reg, progress=False, timeout=5)
    assert url in str(info.value)


def test_mirror_fallback(server):
    base, handler = server
    reg = Zoo([entry([f"{base}/missing.bin", f"{base}/good.bin"])])
    assert zoo.fetch("thing", zoo=reg, progress=False).read_bytes() == PAYLOAD
    assert handler.hits == ["/missing.bin", "/good.bin"]


def test_trust_on_first_use(server):
    base, handler = server
    reg = Zoo([entry([f"{base}/good.bin"], sha256=None)])
    path = zoo.fetch("thing", zoo=reg, progress=False)
    record = json.loads(path.with_name(path.name + ".json").read_text())
    assert record["sha256"] == PAYLOAD_SHA and record["url"].endswith("/good.bin")
    # The server now serves other bytes and the cached copy gets damaged: the re-download
    # must match what was trusted first, so it is refused.
    handler.files["/good.bin"] = b"something else"
    path.write_bytes(b"damaged")
    with pytest.raises(DownloadError, match="failed its sha256 check"):
        zoo.fetch("thing", zoo=reg, progress=False)
    assert path.with_name("thing.bin.corrupt").read_bytes() == b"damaged"


def test_corrupted_cache_is_redownloaded(server):
    base, handler = server
    reg = Zoo([entry([f"{base}/good.bin"])])
    path = zoo.fetch("thing", zoo=reg, progress=False)
    path.write_bytes(b"bit rot")
    assert zoo.fetch("thing", zoo=reg, progress=False).read_bytes() == PAYLOAD
    assert len(handler.hits) == 2


def test_registry_rules():
    reg = Zoo([entry(["http://127.0.0.1:1/x"])])
    with pytest.raises(ValueError, match="already registered"):
        reg.register(entry(["http://127.0.0.1:1/y"], name="THING"))
    with pytest.raises(MicromotionError, match="did you mean thing"):
        reg.get("thign")
    with pytest.raises(MicromotionError, match="is a generator, not a direction"):
        reg.get("thing", kind="direction")
    assert zoo.get("FFHQ").name == "stylegan2-ffhq-1024"
    assert zoo.get("eyesclose").name == "eyesClose"
    with pytest.raises(DownloadError, match="only http"):
        zoo.download("file:///etc/passwd", zoo.home() / "p")


def test_default_zoo_contents():
    names = {e.name for e in zoo.DEFAULT_ZOO.entries()}
    assert {"smile", "angry", "aging", "eyesClose", "headsTurn", "stylegan2-ffhq-1024"} <= names
    ffhq = zoo.get("stylegan2-ffhq-1024")
    assert ffhq.kind == "generator" and ffhq.resolution == 1024 and ffhq.format == "nvidia-pkl"
    assert ffhq.sha256 is None  # NVIDIA publishes none; we never invent one
    for e in zoo.DEFAULT_ZOO.entries():
        assert all(u.startswith("https://") for u in e.urls)
        assert e.sha256 is None or len(e.sha256) == 64


@pytest.mark.parametrize("name", ["smile", "angry", "aging", "eyesClose", "headsTurn"])
def test_reference_files_match_zoo_hashes(name):
    path = REFERENCE / f"{name}.d_latent.pt"
    if not path.is_file():
        pytest.skip("../shared/reference is not beside the repository")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == zoo.get(name).sha256


def _serve_smile(server):
    path = REFERENCE / "smile.d_latent.pt"
    if not path.is_file():
        pytest.skip("../shared/reference is not beside the repository")
    base, handler = server
    handler.files["/smile"] = path.read_bytes()
    return replace(zoo.get("smile"), urls=(f"{base}/smile",)), path


def test_smile_end_to_end(server, monkeypatch):
    """The real smile entry (real sha256), served locally, becomes a ready micromotion."""
    local, raw = _serve_smile(server)
    zoo.DEFAULT_ZOO.unregister("smile")
    try:
        zoo.DEFAULT_ZOO.register(local)
        mm = load_micromotion("smile", progress=False)
        expected = torch.load(raw, map_location="cpu", weights_only=True).detach()[0]
        assert torch.equal(mm.direction, expected)
        converted = zoo.cache_path(local).with_name("smile.safetensors")
        assert Micromotion.load(converted).name == "smile"
        from micromotion.cli import main

        result = CliRunner().invoke(main, ["zoo", "download", "smile", "--quiet"])
        assert result.exit_code == 0 and result.output.strip() == str(converted)
        result = CliRunner().invoke(main, ["zoo", "path", "smile"])
        assert result.exit_code == 0 and result.output.strip().endswith("smile.d_latent.pt")
    finally:
        zoo.DEFAULT_ZOO.unregister("smile")
        zoo.DEFAULT_ZOO.register(zoo._direction("smile", local.sha256, local.description))


def test_cli_list_and_offline_errors(closed_port):
    from micromotion.cli import main

    result = CliRunner().invoke(main, ["zoo", "list"])
    assert result.exit_code == 0
    for name in ("smile", "headsTurn", "stylegan2-ffhq-1024", "NVIDIA Source Code License-NC"):
        assert name in result.output
    result = CliRunner().invoke(main, ["zoo", "path", "ffhq"])
    assert result.exit_code == 1 and "not downloaded yet" in result.stderr
    # An entry whose server is down: one line, exit 1, no traceback.
    url = f"http://127.0.0.1:{closed_port}/net.pkl"
    zoo.DEFAULT_ZOO.register(entry([url], name="offline-net", sha256=None))
    try:
        result = CliRunner().invoke(main, ["zoo", "download", "offline-net", "--quiet"])
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: could not download offline-net")
        assert url in lines[0] and "save it as" in lines[0]
        gen = CliRunner().invoke(main, ["generate", "--generator", "offline-net", "--outdir", "o"])
        assert gen.exit_code == 1 and "could not download offline-net" in gen.stderr
    finally:
        zoo.DEFAULT_ZOO.unregister("offline-net")
