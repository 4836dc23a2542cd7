"""`download()` against a real HTTP server on 127.0.0.1 (no mocks of urllib)."""

from __future__ import annotations

import pytest

from local_http import PAYLOAD, PAYLOAD_SHA, leftovers
from micromotion.errors import DownloadError, MicromotionError
from micromotion.hub import download


def test_good_download(http_server, tmp_path):
    dest = tmp_path / "sub" / "good.bin"
    digest = download(http_server.url("/good.bin"), dest, sha256=PAYLOAD_SHA, progress=False)
    assert digest == PAYLOAD_SHA
    assert dest.read_bytes() == PAYLOAD
    assert leftovers(dest.parent) == []


def test_uppercase_hash_is_accepted(http_server, tmp_path):
    dest = tmp_path / "good.bin"
    download(http_server.url("/good.bin"), dest, sha256=PAYLOAD_SHA.upper(), progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_redirect_and_missing_length(http_server, tmp_path):
    # GitHub "raw" URLs redirect; some servers send no Content-Length.
    a, b = tmp_path / "a", tmp_path / "b"
    assert download(http_server.url("/redirect"), a, progress=False) == PAYLOAD_SHA
    assert download(http_server.url("/nolength"), b, progress=False) == PAYLOAD_SHA
    assert http_server.hits == ["/redirect", "/good.bin", "/nolength"]


def test_wrong_hash_leaves_nothing(http_server, tmp_path):
    dest = tmp_path / "good.bin"
    dest.write_bytes(b"older file")  # must survive a failed download untouched
    url = http_server.url("/good.bin")
    with pytest.raises(DownloadError) as info:
        download(url, dest, sha256="0" * 64, progress=False)
    assert info.value.reason == f"sha256 mismatch: expected {'0' * 64}, got {PAYLOAD_SHA}"
    assert str(info.value).startswith(url)
    assert dest.read_bytes() == b"older file"
    assert leftovers(tmp_path) == []


def test_truncated(http_server, tmp_path):
    dest = tmp_path / "t.bin"
    with pytest.raises(DownloadError) as info:
        download(http_server.url("/truncated"), dest, progress=False)
    assert info.value.reason.startswith("truncated: got ")
    assert f"of {len(PAYLOAD)} bytes" in info.value.reason
    assert not dest.exists() and leftovers(tmp_path) == []


def test_http_404(http_server, tmp_path):
    with pytest.raises(DownloadError) as info:
        download(http_server.url("/missing"), tmp_path / "m", progress=False)
    assert info.value.reason == "HTTP 404"
    assert list(tmp_path.iterdir()) == []


def test_refused_connection(closed_port, tmp_path):
    with pytest.raises(DownloadError) as info:
        download(f"http://127.0.0.1:{closed_port}/x", tmp_path / "x", progress=False)
    assert info.value.reason.startswith("unreachable")
    assert list(tmp_path.iterdir()) == []


def test_silent_server_times_out(http_server, tmp_path):
    with pytest.raises(DownloadError) as info:
        download(http_server.url("/slow"), tmp_path / "s", progress=False, timeout=0.2)
    assert "timed out" in info.value.reason
    assert list(tmp_path.iterdir()) == []


def test_only_http_urls(tmp_path):
    with pytest.raises(DownloadError, match="only http"):
        download("file:///etc/hostname", tmp_path / "p", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_destination(http_server, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    # The destination's "directory" is a file: a user error, not a DownloadError.
    with pytest.raises(MicromotionError, match="cannot write here"):
        download(http_server.url("/good.bin"), blocker / "x.bin", progress=False)
