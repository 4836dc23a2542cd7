"""The zoo: registry, verified cache and CLI, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from helpers import REFERENCE, zoo_entry
from local_http import PAYLOAD, PAYLOAD_SHA, leftovers
from micromotion import hub as zoo
from micromotion.cli import main
from micromotion.errors import DownloadError, MicromotionError
from micromotion.hub import Zoo
from micromotion.subspace.micromotion import Micromotion
from micromotion.weights.micromotion import load_micromotion

DIRECTIONS = ("smile", "angry", "aging", "eyesClose", "headsTurn")
#: The paper's network: NVIDIA's original TF release (the NVlabs/stylegan2 README's URL).
FFHQ_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/stylegan2-ffhq-config-f.pkl"


make_entry = functools.partial(zoo_entry, sha256=PAYLOAD_SHA)


def swap(registry, entry):
    """Replace the entry of the same name in ``registry`` with ``entry``."""
    registry.unregister(entry.name)
    registry.register(entry)
    return entry


def reference_file(name):
    path = REFERENCE / f"{name}.d_latent.pt"
    if not path.is_file():
        pytest.skip("../shared/reference is not beside the repository")
    return path


# ---------------------------------------------------------------------------------------------
# Registry.


def test_registry_rules():
    reg = Zoo([make_entry(["http://127.0.0.1:1/x"], aliases=("alias",))])
    with pytest.raises(ValueError, match="already registered"):
        reg.register(make_entry(["http://127.0.0.1:1/y"], name="THING"))
    with pytest.raises(ValueError, match="'alias' is already registered"):
        reg.register(make_entry(["http://127.0.0.1:1/y"], name="other", aliases=("alias",)))
    assert reg.names() == ["thing"]  # the failed registrations left nothing behind
    with pytest.raises(MicromotionError, match=r"'thign' is not a zoo name; did you mean thing\?"):
        reg.get("thign")
    with pytest.raises(MicromotionError, match="is a generator, not a direction"):
        reg.get("thing", kind="direction")
    assert reg.get("ALIAS").name == "thing"
    assert reg.unregister("alias").name == "thing"
    assert "thing" not in reg and "alias" not in reg and len(reg) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [("sha256", "abc"), ("sha256", PAYLOAD_SHA.upper()), ("urls", ()), ("filename", "a/b")],
)
def test_entry_validation(field, value):
    with pytest.raises(ValueError, match="zoo entry 'thing'"):
        replace(make_entry(["http://127.0.0.1:1/x"]), **{field: value})


def test_default_zoo_contents():
    assert set(DIRECTIONS) <= set(zoo.DEFAULT_ZOO.names(kind="direction"))
    ffhq = zoo.get("ffhq")
    assert ffhq.name == "stylegan2-ffhq-config-f" and ffhq.urls == (FFHQ_URL,)
    assert (ffhq.kind, ffhq.resolution, ffhq.format) == ("generator", 1024, "tensorflow-pkl")
    assert "the paper's network" in ffhq.description
    rosinality = zoo.get("ffhq-rosinality")
    assert rosinality.format == "rosinality-pt" and rosinality.sha256 is None
    assert all("1EM87UquaoQmk17Q8d5kYIAHqu0dkYqdT" in u for u in rosinality.urls)
    for other in ("stylegan2-ffhq-1024", "stylegan2-ada-ffhq-1024"):  # claims only what is known
        assert "not verified to be the paper's network" in zoo.get(other).description
    assert ffhq.sha256 is None  # NVIDIA publishes none; we never invent one
    assert "NVIDIA Source Code License-NC" in ffhq.license
    assert zoo.get("eyesclose").name == "eyesClose"  # case-insensitive
    for name in DIRECTIONS:
        e = zoo.get(name, kind="direction")
        assert e.format == "official-direction" and e.license == "MIT" and e.sha256
        assert e.urls == (
            f"https://github.com/wuqiuche/micromotion-styleGAN/raw/main/pregen_latents/{name}/d_latent",
        )
    for e in zoo.list_entries():
        assert all(u.startswith("https://") for u in e.urls)


@pytest.mark.parametrize("name", DIRECTIONS)
def test_reference_files_match_zoo_hashes(name):
    data = reference_file(name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == zoo.get(name).sha256


# ---------------------------------------------------------------------------------------------
# Fetching and the cache.


def test_good_file_then_cache_hit(http_server):
    reg = Zoo([make_entry([http_server.url("/good.bin")])])
    path = zoo.fetch("thing", registry=reg, progress=False)
    assert path == zoo.home() / "zoo" / "thing" / "thing.bin"
    assert path.read_bytes() == PAYLOAD
    assert zoo.fetch("THING", registry=reg, progress=False) == path
    assert http_server.hits == ["/good.bin"]  # the second fetch was a verified cache hit
    assert not path.with_name("thing.bin.json").exists()  # published hash: no TOFU record


def test_wrong_hash(http_server):
    url = http_server.url("/good.bin")
    reg = Zoo([make_entry([url], sha256="0" * 64)])
    with pytest.raises(DownloadError) as info:
        zoo.fetch("thing", registry=reg, progress=False)
    message = str(info.value)
    assert f"{url} (sha256 mismatch: expected {'0' * 64}, got {PAYLOAD_SHA})" in message
    path = zoo.cache_path(reg.get("thing"))
    assert not path.exists() and leftovers(path.parent) == []


def test_truncated(http_server):
    reg = Zoo([make_entry([http_server.url("/truncated")])])
    with pytest.raises(DownloadError) as info:
        zoo.fetch("thing", registry=reg, progress=False)
    path = zoo.cache_path(reg.get("thing"))
    assert f"/truncated (truncated: got {len(PAYLOAD) // 3} of {len(PAYLOAD)} bytes)" in str(
        info.value
    )
    assert str(info.value).endswith(f"save it as {path}")
    assert not path.exists() and leftovers(path.parent) == []


def test_404_names_url_and_destination(http_server):
    url = http_server.url("/missing.bin")
    reg = Zoo([make_entry([url])])
    with pytest.raises(DownloadError) as info:
        zoo.fetch("thing", registry=reg, progress=False)
    path = zoo.cache_path(reg.get("thing"))
    assert str(info.value) == (
        f"could not download thing from {url} (HTTP 404). Download it yourself and save it as "
        f"{path}"
    )


def test_no_server(closed_port):
    url = f"http://127.0.0.1:{closed_port}/x.bin"
    reg = Zoo([make_entry([url])])
    with pytest.raises(DownloadError) as info:
        zoo.fetch("thing", registry=reg, progress=False, timeout=5)
    message = str(info.value)
    assert message.startswith(f"could not download thing from {url} (unreachable")
    assert message.endswith(f"save it as {zoo.cache_path(reg.get('thing'))}")
    assert "\n" not in message


def test_mirror_fallback(http_server):
    reg = Zoo([make_entry([http_server.url("/missing.bin"), http_server.url("/good.bin")])])
    assert zoo.fetch("thing", registry=reg, progress=False).read_bytes() == PAYLOAD
    assert http_server.hits == ["/missing.bin", "/good.bin"]


def test_all_mirrors_fail(http_server, closed_port):
    first, second = http_server.url("/missing.bin"), f"http://127.0.0.1:{closed_port}/x"
    reg = Zoo([make_entry([first, second])])
    with pytest.raises(DownloadError) as info:
        zoo.fetch("thing", registry=reg, progress=False)
    assert f"from {first} (HTTP 404), {second} (unreachable" in str(info.value)


def test_trust_on_first_use(http_server):
    reg = Zoo([make_entry([http_server.url("/good.bin")], sha256=None)])
    path = zoo.fetch("thing", registry=reg, progress=False)
    record = json.loads(path.with_name("thing.bin.json").read_text())
    assert record["sha256"] == PAYLOAD_SHA and record["url"] == http_server.url("/good.bin")
    assert record["trust"] == "first use" and record["micromotion_version"] and record["created"]
    assert zoo.fetch("thing", registry=reg, progress=False) == path
    assert http_server.hits == ["/good.bin"]
    # The server now serves other bytes and the cached copy is damaged: the re-download must
    # match what was trusted first, so it is refused and the damaged copy is kept aside.
    http_server.files["/good.bin"] = b"something else"
    path.write_bytes(b"damaged")
    with pytest.raises(DownloadError, match="failed its sha256 check") as info:
        zoo.fetch("thing", registry=reg, progress=False)
    assert "recorded on first use in thing.bin.json" in str(info.value)
    assert path.with_name("thing.bin.corrupt").read_bytes() == b"damaged"
    assert not path.exists()


def test_file_placed_by_hand_is_trusted_and_recorded(http_server):
    reg = Zoo([make_entry([http_server.url("/good.bin")], sha256=None)])
    path = zoo.cache_path(reg.get("thing"))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"hand-downloaded")
    assert zoo.fetch("thing", registry=reg, progress=False) == path
    record = json.loads(path.with_name("thing.bin.json").read_text())
    assert record["sha256"] == hashlib.sha256(b"hand-downloaded").hexdigest()
    assert http_server.hits == []


def test_unreadable_record_is_an_error(http_server):
    reg = Zoo([make_entry([http_server.url("/good.bin")], sha256=None)])
    path = zoo.fetch("thing", registry=reg, progress=False)
    path.with_name("thing.bin.json").write_text("{not json")
    with pytest.raises(MicromotionError, match="thing.bin.json: unreadable"):
        zoo.fetch("thing", registry=reg, progress=False)


def test_corrupted_cache_is_redownloaded(http_server):
    reg = Zoo([make_entry([http_server.url("/good.bin")])])
    path = zoo.fetch("thing", registry=reg, progress=False)
    path.write_bytes(b"bit rot")
    assert zoo.fetch("thing", registry=reg, progress=False).read_bytes() == PAYLOAD
    assert len(http_server.hits) == 2
    assert sorted(p.name for p in path.parent.iterdir()) == ["thing.bin"]  # nothing aside


def test_corrupted_cache_while_offline(http_server, closed_port):
    reg = Zoo([make_entry([http_server.url("/good.bin")])])
    path = zoo.fetch("thing", registry=reg, progress=False)
    path.write_bytes(b"bit rot")
    offline = Zoo([make_entry([f"http://127.0.0.1:{closed_port}/x"])])
    with pytest.raises(DownloadError) as info:
        zoo.fetch("thing", registry=offline, progress=False)
    assert str(info.value).startswith(
        "thing.bin in the cache failed its sha256 check (moved aside to thing.bin.corrupt), "
        "and could not download thing"
    )
    assert path.with_name("thing.bin.corrupt").read_bytes() == b"bit rot"


def test_resolve(http_server, tmp_path):
    reg = Zoo([make_entry([http_server.url("/good.bin")])])
    local = tmp_path / "mine.pkl"
    local.write_bytes(b"x")
    assert zoo.resolve(local, registry=reg) == local
    assert zoo.resolve("thing", kind="generator", registry=reg, progress=False).is_file()
    with pytest.raises(MicromotionError) as info:
        zoo.resolve("thng", kind="generator", registry=reg)
    assert str(info.value) == (
        "thng: no such file, and not a zoo name (known: thing); did you mean thing?"
    )
    with pytest.raises(MicromotionError, match="thing: the zoo entry is a generator, not a dir"):
        zoo.resolve("thing", kind="direction", registry=reg)
    with pytest.raises(MicromotionError, match="is a directory"):
        zoo.resolve(tmp_path, registry=reg)
    assert http_server.hits == ["/good.bin"]


def test_resolve_lists_known_names_of_the_kind():
    with pytest.raises(MicromotionError) as info:
        zoo.resolve("frown", kind="direction")
    assert "(known: smile, angry, aging, eyesClose, headsTurn)" in str(info.value)


def test_smile_end_to_end(http_server):
    """The real smile entry, with its real sha256, served locally from the reference copy."""
    raw = reference_file("smile")
    http_server.files["/smile/d_latent"] = raw.read_bytes()
    local = replace(zoo.get("smile"), urls=(http_server.url("/smile/d_latent"),))
    path = zoo.fetch("smile", registry=Zoo([local]), progress=False)
    assert path == zoo.home() / "zoo" / "smile" / "smile.d_latent.pt"
    d = torch.load(path, map_location="cpu", weights_only=True)
    assert d.shape == (1, 18, 512) and d.dtype == torch.float32


# ---------------------------------------------------------------------------------------------
# Library and CLI on the default registry.


def test_load_micromotion_by_zoo_name(http_server, default_zoo):
    raw = reference_file("smile")
    http_server.files["/smile"] = raw.read_bytes()
    swap(default_zoo, replace(zoo.get("smile"), urls=(http_server.url("/smile"),)))
    mm = load_micromotion("Smile", progress=False)
    expected = torch.load(raw, map_location="cpu", weights_only=True).detach()[0]
    assert torch.equal(mm.direction, expected)


def test_cli_download_and_path(http_server, default_zoo):
    raw = reference_file("smile")
    http_server.files["/smile"] = raw.read_bytes()
    swap(default_zoo, replace(zoo.get("smile"), urls=(http_server.url("/smile"),)))
    runner = CliRunner()

    result = runner.invoke(main, ["zoo", "path", "smile"])
    assert result.exit_code == 1 and "not downloaded yet" in result.stderr
    result = runner.invoke(main, ["zoo", "download", "smile", "--quiet"])
    assert result.exit_code == 0, result.output
    converted = zoo.home() / "zoo" / "smile" / "smile.safetensors"
    assert result.stdout.strip() == str(converted)
    assert Micromotion.load(converted).name == "smile"
    result = runner.invoke(main, ["zoo", "path", "smile"])
    assert result.exit_code == 0
    assert result.stdout.strip() == str(zoo.home() / "zoo" / "smile" / "smile.d_latent.pt")
    listing = runner.invoke(main, ["zoo", "list", "--kind", "direction"]).stdout
    smile_row = next(line for line in listing.splitlines() if line.startswith("smile "))
    assert smile_row.split()[1:4] == ["direction", "1024", "yes"]
    assert http_server.hits == ["/smile"]


def test_cli_download_several_names(http_server, default_zoo):
    for name in ("smile", "angry"):
        http_server.files[f"/{name}"] = reference_file(name).read_bytes()
        swap(default_zoo, replace(zoo.get(name), urls=(http_server.url(f"/{name}"),)))
    runner = CliRunner()
    typo = runner.invoke(main, ["zoo", "download", "smile", "angyr", "--quiet"])
    assert typo.exit_code == 1 and "angyr" in typo.stderr and http_server.hits == []
    result = runner.invoke(main, ["zoo", "download", "smile", "angry", "--quiet"])
    assert result.exit_code == 0, result.output
    assert [Path(line).name for line in result.stdout.split()] == [
        "smile.safetensors",
        "angry.safetensors",
    ]


def test_cli_list():
    result = CliRunner().invoke(main, ["zoo", "list"])
    assert result.exit_code == 0
    for text in (*DIRECTIONS, "stylegan2-ffhq-1024", "NVIDIA Source Code License-NC"):
        assert text in result.stdout
    ffhq_row = next(s for s in result.stdout.splitlines() if s.startswith("stylegan2-ffhq-1024 "))
    assert ffhq_row.split()[1:4] == ["generator", "1024", "no"]
    directions = CliRunner().invoke(main, ["zoo", "list", "--kind", "direction"]).stdout
    assert "smile" in directions and "stylegan2-ffhq-1024" not in directions
    lpips = CliRunner().invoke(main, ["zoo", "list", "--kind", "lpips"]).stdout
    assert "vgg16-imagenet" in lpips and "lpips-vgg-v0.1" in lpips and "smile" not in lpips
    result = CliRunner().invoke(main, ["zoo", "list", "--kind", "no-such-kind"])
    assert result.exit_code == 1 and "no zoo entries of kind 'no-such-kind'" in result.stderr


def test_cli_unknown_name():
    result = CliRunner().invoke(main, ["zoo", "download", "smiel"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: 'smiel' is not a zoo name; did you mean smile? (see `micromotion zoo list`)"
    )


def test_cli_offline_ffhq(closed_port, default_zoo):
    """The real FFHQ entry with no way to reach its server: one line, exit 1, no traceback."""
    url = f"http://127.0.0.1:{closed_port}/stylegan2-ffhq-config-f.pkl"
    swap(default_zoo, replace(zoo.get("stylegan2-ffhq-config-f"), urls=(url,)))
    dest = zoo.home() / "zoo" / "stylegan2-ffhq-config-f" / "stylegan2-ffhq-config-f.pkl"
    result = CliRunner().invoke(main, ["zoo", "download", "ffhq", "--quiet", "--timeout", "5"])
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"error: could not download stylegan2-ffhq-config-f from {url} (")
    assert lines[0].endswith(f"Download it yourself and save it as {dest}")
    # The same one line from a command that takes a generator by zoo name.
    gen = CliRunner().invoke(main, ["generate", "--generator", "ffhq", "--outdir", "o"])
    assert gen.exit_code == 1 and gen.stderr.strip() == lines[0]


def test_entry_names_cannot_escape_the_cache():
    for bad in ("../x", "a/b", ".hidden", "a..b"):
        with pytest.raises(ValueError, match="name must be"):
            zoo_entry(["https://example.org/x"], name=bad)
