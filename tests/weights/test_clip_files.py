"""CLIP weights: hostile files are refused in our words, and an offline machine is told at once."""

from __future__ import annotations

import os
import time

import pytest
import torch

from micromotion.errors import MicromotionError
from micromotion.weights import clip as clip_weights
from micromotion.weights.clip import DEFAULT_CLIP, load_clip


class _Hostile:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def test_a_hostile_torch_file_is_refused_without_torchs_advice(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "clip.bin"
    torch.save({"visual.proj": _Hostile()}, path)
    with pytest.raises(MicromotionError) as caught:
        load_clip(f"ViT-B-32-quickgelu:{path}")
    message = str(caught.value)
    assert "refused to load objects that are not plain data (posix.system)" in message
    assert "weights_only" not in message and "\n" not in message
    assert not (tmp_path / "pwned.txt").exists()


def test_a_cached_pretrained_file_is_found_without_the_network(tmp_path, monkeypatch):
    """The Hugging Face cache is looked up first: no connection is tried for a cached file."""
    hub = tmp_path / "hf" / "hub" / "models--timm--vit_base_patch32_clip_224.openai"
    (hub / "refs").mkdir(parents=True)
    (hub / "refs" / "main").write_text("abc123")
    snapshot = hub / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_pytorch_model.bin").write_bytes(b"not weights")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(
        clip_weights, "_server_reachable", lambda cfg: pytest.fail("the network was tried")
    )
    # The cached file is found (and, being garbage, refused as weights): no download.
    with pytest.raises(MicromotionError, match="open_clip_pytorch_model.bin"):
        load_clip(DEFAULT_CLIP)


def test_offline_is_detected_in_seconds(tmp_path, monkeypatch, closed_port):
    """Not cached and the server refuses: one line at once, not a minute of retries."""
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", f"http://127.0.0.1:{closed_port}")
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(
        "open_clip.pretrained.download_pretrained",
        lambda cfg: pytest.fail("a download was attempted"),
    )
    start = time.monotonic()
    with pytest.raises(MicromotionError, match="cannot be reached") as caught:
        load_clip(DEFAULT_CLIP)
    assert time.monotonic() - start < 10
    assert "HF_HUB_OFFLINE=1" in str(caught.value) and "\n" not in str(caught.value)
