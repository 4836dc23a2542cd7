"""The paper's five directions ship in the package; offline, the main job lists all it lacks."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from helpers import REFERENCE
from micromotion import hub, load_micromotion
from micromotion.errors import DownloadError
from micromotion.weights.assets import fetch_all
from micromotion.weights.micromotion import (
    PACKAGED_DIRECTIONS,
    import_official,
    packaged_direction,
)


@pytest.mark.parametrize("name", PACKAGED_DIRECTIONS)
def test_shipped_directions_load_without_any_download(name, monkeypatch):
    monkeypatch.setattr(hub.cache, "_download_entry", lambda *a, **k: pytest.fail("downloaded"))
    mm = load_micromotion(name)
    entry = hub.get(name, kind="direction")
    assert packaged_direction(name) is not None
    assert (mm.num_ws, mm.w_dim) == (18, 512) and mm.name == entry.name
    assert mm.metadata["source_sha256"] == entry.sha256  # the published file's hash
    assert mm.metadata["source_url"] == entry.urls[0] and "MIT" in mm.metadata["license"]


@pytest.mark.parametrize("name", PACKAGED_DIRECTIONS)
def test_shipped_directions_equal_the_published_files(name):
    entry = hub.get(name, kind="direction")
    published = REFERENCE / entry.filename
    if not published.is_file():
        pytest.skip("../shared/reference is not beside the repository")
    assert torch.equal(load_micromotion(name).direction, import_official(published).direction)


def test_a_packaged_name_is_not_a_path():
    assert packaged_direction("smile.safetensors") is None
    assert packaged_direction("stylegan2-ffhq-1024") is None  # a generator, not a direction
    assert packaged_direction("nosuch") is None


def test_every_missing_file_is_named_at_once(default_zoo, closed_port):
    for name in ("stylegan2-ffhq-config-f", "vgg16-imagenet", "lpips-vgg-v0.1"):
        entry = hub.get(name)
        default_zoo.unregister(entry.name)
        default_zoo.register(replace(entry, urls=(f"http://127.0.0.1:{closed_port}/{name}",)))
    with pytest.raises(DownloadError) as caught:
        fetch_all(["ffhq", "smile", "vgg16-imagenet", "lpips-vgg-v0.1", "ffhq"], progress=False)
    message = str(caught.value)
    assert message.startswith("3 files are missing: (1) could not download stylegan2-ffhq-config-f")
    for name in ("stylegan2-ffhq-config-f", "vgg16-imagenet", "lpips-vgg-v0.1"):
        assert f"could not download {name}" in message
        assert str(hub.cache_path(hub.get(name))) in message  # where to save a copy by hand
    assert "smile" not in message and "\n" not in message


def test_fetch_all_passes_over_files_and_unknown_names(tmp_path, monkeypatch):
    monkeypatch.setattr(hub.cache, "_download_entry", lambda *a, **k: pytest.fail("downloaded"))
    (tmp_path / "g.pkl").write_bytes(b"x")
    fetch_all([str(tmp_path / "g.pkl"), "not-a-zoo-name", None, "smile"], progress=False)
