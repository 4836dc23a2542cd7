"""Trust on first use pins only files that load as their kind; no rejected copy is lost."""

from __future__ import annotations

import functools

import pytest

from helpers import tiny_generator, zoo_entry
from micromotion import hub, load_generator, save_generator
from micromotion.errors import CheckpointError, DownloadError
from micromotion.hub import Zoo
from micromotion.weights.assets import check_asset, fetch_checked

gen_entry = functools.partial(
    zoo_entry, sha256=None, name="tinygen", kind="generator", filename="tinygen.safetensors"
)


def _place(reg: Zoo, data: bytes):
    path = hub.cache_path(reg.get("tinygen"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_garbage_placed_in_the_cache_is_not_trusted(default_zoo, closed_port):
    entry = gen_entry([f"http://127.0.0.1:{closed_port}/tinygen.safetensors"])
    default_zoo.register(entry)
    path = _place(default_zoo, b"<html>quota exceeded</html>")
    with pytest.raises(CheckpointError) as caught:
        load_generator("tinygen")
    message = str(caught.value)
    assert "not a usable generator file, so it was not trusted" in message
    assert "moved aside to tinygen.safetensors.corrupt" in message and "\n" not in message
    assert not path.with_name("tinygen.safetensors.json").exists()  # nothing pinned
    assert path.with_name("tinygen.safetensors.corrupt").read_bytes().startswith(b"<html>")
    # A second rejected file keeps its own copy: the first one aside is not overwritten.
    _place(default_zoo, b"second garbage")
    with pytest.raises(CheckpointError, match=r"moved aside to tinygen\.safetensors\.corrupt\.1"):
        load_generator("tinygen")
    assert path.with_name("tinygen.safetensors.corrupt").read_bytes().startswith(b"<html>")
    assert path.with_name("tinygen.safetensors.corrupt.1").read_bytes() == b"second garbage"


def test_a_real_generator_placed_in_the_cache_is_trusted_once(default_zoo, closed_port, tmp_path):
    entry = gen_entry([f"http://127.0.0.1:{closed_port}/tinygen.safetensors"])
    default_zoo.register(entry)
    G = tiny_generator(3)
    save_generator(G, tmp_path / "g.safetensors")
    path = _place(default_zoo, (tmp_path / "g.safetensors").read_bytes())
    loaded = load_generator("tinygen")
    assert loaded.fingerprint() == G.fingerprint()
    assert path.with_name("tinygen.safetensors.json").is_file()  # pinned after the check


def test_a_garbage_download_is_not_trusted(http_server):
    http_server.files["/tinygen.safetensors"] = b"\x00\x01 a truncated or foreign file"
    reg = Zoo([gen_entry([http_server.url("/tinygen.safetensors")])])
    with pytest.raises(CheckpointError, match="not a usable generator file"):
        fetch_checked("tinygen", registry=reg, progress=False)
    path = hub.cache_path(reg.get("tinygen"))
    assert not path.exists() and not path.with_name("tinygen.safetensors.json").exists()
    assert path.with_name("tinygen.safetensors.corrupt").is_file()


def test_check_asset_refuses_a_file_of_another_kind(tmp_path):
    save_generator(tiny_generator(0), tmp_path / "g.safetensors")
    assert check_asset("generator", tmp_path / "g.safetensors") is not None
    with pytest.raises(CheckpointError):
        check_asset("direction", tmp_path / "g.safetensors")
    (tmp_path / "w.pth").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(CheckpointError, match="corrupt or truncated torch file"):
        check_asset("lpips", tmp_path / "w.pth")


def test_sha_mismatch_keeps_every_rejected_copy(http_server, closed_port):
    reg = Zoo([zoo_entry([f"http://127.0.0.1:{closed_port}/x"], sha256="0" * 64)])
    path = hub.cache_path(reg.get("thing"))
    path.parent.mkdir(parents=True)
    for n, data in enumerate([b"first", b"second"]):
        path.write_bytes(data)
        with pytest.raises(DownloadError, match="failed its sha256 check"):
            hub.fetch("thing", registry=reg, progress=False)
        aside = "thing.bin.corrupt" + ("" if n == 0 else ".1")
        assert path.with_name(aside).read_bytes() == data
    assert path.with_name("thing.bin.corrupt").read_bytes() == b"first"
