"""CLIP weights: a ``MODEL:WEIGHTS`` spec → a :class:`~micromotion.networks.clip.ClipModel`.

A CLIP is named by a spec ``MODEL:WEIGHTS``:

- ``ViT-B-32:openai`` — an open_clip model name and one of its pretrained tags
  (``open_clip.list_pretrained()``). The weights come from open_clip's download cache
  (huggingface_hub); nothing is downloaded when ``HF_HUB_OFFLINE=1`` and the cache is empty,
  which gives a one-line error saying how to get them.
- ``ViT-B-32-quickgelu:/path/to/weights.bin`` — a model name and a local weights file
  (``.bin``/``.pt``/``.pth`` read with ``torch.load(weights_only=True)``, or
  ``.safetensors``): open_clip / Hugging Face state dicts such as
  ``open_clip_pytorch_model.bin``. OpenAI's weights need the ``-quickgelu`` variant of the
  name. OpenAI's original ``ViT-B-32.pt`` is a TorchScript archive, which is code and is
  refused; use the open_clip/HF copy of the same weights instead.
- ``/path/to/model.json:/path/to/weights.pt`` — an open_clip model-config JSON (the keys
  ``embed_dim``, ``vision_cfg``, ``text_cfg`` of open_clip's ``model_configs/*.json``) and a
  local weights file. This builds architectures open_clip does not ship (the tests use a tiny
  random one) without registering anything in open_clip's global config registry.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from micromotion.core.defaults import DEFAULT_CLIP
from micromotion.core.io import require_file, sha256_file
from micromotion.errors import MicromotionError, ParameterError
from micromotion.hub import looks_like_path
from micromotion.networks.clip import OPENAI_MEAN, OPENAI_STD, ClipModel
from micromotion.weights.state import load_torch_file


@dataclass(frozen=True)
class ClipSpec:
    """A parsed ``MODEL:WEIGHTS`` spec.

    Attributes:
        model: open_clip model name, or a path to a model-config JSON.
        weights: Pretrained tag (``openai``) or a path to a local weights file.
    """

    model: str
    weights: str

    @property
    def model_is_file(self) -> bool:
        """The model is a config JSON, not an open_clip name."""
        return self.model.endswith(".json")

    @property
    def weights_is_file(self) -> bool:
        """The weights are a local file, not a pretrained tag."""
        return looks_like_path(self.weights)

    def __str__(self) -> str:
        return f"{self.model}:{self.weights}"


def parse_clip_spec(spec: str) -> ClipSpec:
    """Split ``MODEL:WEIGHTS`` at its first colon (model names and tags hold none)."""
    model, sep, weights = spec.partition(":")
    if not sep or not model or not weights:
        raise ParameterError(
            "clip",
            f"{spec!r}: expected MODEL:WEIGHTS, e.g. {DEFAULT_CLIP} or "
            "ViT-B-32-quickgelu:/path/to/weights.bin",
        )
    return ClipSpec(model, weights)


def load_clip(spec: str = DEFAULT_CLIP, *, device: str | torch.device = "cpu") -> ClipModel:
    """Load a CLIP from a ``MODEL:WEIGHTS`` spec (see the module docstring).

    Local files are read with ``weights_only=True`` (open_clip's ``load_checkpoint``),
    never unpickling code; open_clip 3.x does this by default and we ask for it explicitly.

    Raises:
        MicromotionError: Unknown model or tag, weights missing (offline, not cached),
            missing or unreadable file, or weights that do not fit the architecture.
    """
    import open_clip

    parsed = parse_clip_spec(spec)
    if parsed.model_is_file:
        return _load_from_config_file(parsed, device)
    if open_clip.get_model_config(parsed.model) is None:
        raise ParameterError(
            "clip",
            f"{spec}: unknown open_clip model {parsed.model!r} (see open_clip.list_models(),"
            " or pass a model-config .json)",
        )
    if parsed.weights_is_file:
        path = require_file(parsed.weights, what="a CLIP weights file")
        model = _build(lambda: open_clip.create_model(parsed.model, weights_only=True), spec)
        _load_weights(model, path, spec)
        return ClipModel(
            model.to(device), spec=spec, tokenizer=open_clip.get_tokenizer(parsed.model),
            weights_sha256=sha256_file(path),
        )  # fmt: skip
    cfg = open_clip.get_pretrained_cfg(parsed.model, parsed.weights)
    if not cfg:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(parsed.model)) or "none"
        raise ParameterError(
            "clip",
            f"{spec}: {parsed.weights!r} is not a weights file or a pretrained tag of "
            f"{parsed.model} (tags: {tags})",
        )
    path = Path(_fetch_pretrained(cfg, spec))
    model = _build(
        lambda: open_clip.create_model(
            parsed.model, force_quick_gelu=bool(cfg.get("quick_gelu", False)), weights_only=True
        ),
        spec,
    )
    _load_weights(model, path, spec)
    return ClipModel(
        model.to(device),
        spec=spec,
        tokenizer=open_clip.get_tokenizer(parsed.model),
        mean=cfg.get("mean", OPENAI_MEAN),
        std=cfg.get("std", OPENAI_STD),
    )


def check_clip_available(spec: str) -> None:
    """Fail fast, without building anything, if ``spec`` cannot be loaded.

    Parses the spec, checks that local files exist, and for a pretrained tag makes sure the
    weights are in the download cache (fetching them if online). The CLI calls this before it
    loads the generator.
    """
    import open_clip

    parsed = parse_clip_spec(spec)
    if parsed.model_is_file:
        require_file(parsed.model, what="an open_clip model-config .json")
        require_file(parsed.weights, what="a CLIP weights file")
        return
    if open_clip.get_model_config(parsed.model) is None:
        raise ParameterError("clip", f"{spec}: unknown open_clip model {parsed.model!r}")
    if parsed.weights_is_file:
        require_file(parsed.weights, what="a CLIP weights file")
        return
    cfg = open_clip.get_pretrained_cfg(parsed.model, parsed.weights)
    if not cfg:
        raise ParameterError("clip", f"{spec}: unknown pretrained tag {parsed.weights!r}")
    _fetch_pretrained(cfg, spec)


#: Seconds to wait for the weights' server before calling the machine offline.
PROBE_TIMEOUT = 3.0


def _cached_pretrained(cfg: dict[str, Any]) -> str | None:
    """The pretrained weights' file if a download cache holds it; never touches the network."""
    import os

    if cfg.get("file"):
        return str(cfg["file"])
    hub = cfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache
        from open_clip.pretrained import HF_WEIGHTS_NAME, _get_safe_alternatives

        model_id, filename = os.path.split(hub)
        filename = filename or HF_WEIGHTS_NAME
        # open_clip prefers a .safetensors copy of the same weights when the repo has one.
        for name in [*_get_safe_alternatives(filename), filename]:
            found = try_to_load_from_cache(model_id, name)
            if isinstance(found, str) and Path(found).is_file():
                return found
    url = cfg.get("url", "")
    if url:
        local = Path("~/.cache/clip").expanduser() / os.path.basename(url)
        if local.is_file():
            return str(local)
    return None


def _server_reachable(cfg: dict[str, Any]) -> bool:
    """Whether the weights' server (or the configured proxy) accepts a connection quickly."""
    import socket
    import urllib.parse
    import urllib.request

    if cfg.get("hf_hub"):
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:
            return False
        target = constants.ENDPOINT
    else:
        target = cfg.get("url", "")
    proxy = urllib.request.getproxies().get(urllib.parse.urlsplit(target).scheme)
    parts = urllib.parse.urlsplit(proxy or target)
    if not parts.hostname:
        return True  # nothing to probe: let the download itself say what is wrong
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=PROBE_TIMEOUT):
            return True
    except OSError:
        return False


def _fetch_pretrained(cfg: dict[str, Any], spec: str) -> str:
    from open_clip.pretrained import download_pretrained

    cached = _cached_pretrained(cfg)
    if cached is not None:
        return cached
    # Not cached: without a quick connection, say so now rather than after a minute of the
    # download library's retries.
    if not _server_reachable(cfg):
        raise MicromotionError(
            f"CLIP weights for {spec} are not in the cache and their server cannot be reached "
            "(offline?): fetch them once online (open_clip caches them in the Hugging Face "
            "cache, HF_HOME; HF_HUB_OFFLINE=1 then uses the cache) or name a local file as "
            "MODEL:/path/to/weights"
        )
    try:
        path = download_pretrained(cfg)
    except Exception as exc:  # huggingface_hub / urllib raise many kinds when offline
        raise MicromotionError(
            f"CLIP weights for {spec} are not available here ({type(exc).__name__}): fetch them "
            "once online (open_clip caches them in the Hugging Face cache, HF_HOME; "
            "HF_HUB_OFFLINE=1 then uses the cache) or name a local file as MODEL:/path/to/weights"
        ) from None
    if not path or not Path(path).is_file():
        raise MicromotionError(f"CLIP weights for {spec}: open_clip returned no file")
    return str(path)


def _load_from_config_file(parsed: ClipSpec, device: str | torch.device) -> ClipModel:
    from open_clip.model import CLIP, CustomTextCLIP

    cfg_path = require_file(parsed.model, what="an open_clip model-config .json")
    weights = require_file(parsed.weights, what="a CLIP weights file")
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MicromotionError(f"{cfg_path}: not a JSON model config ({exc})") from None
    if not isinstance(cfg, dict) or not {"embed_dim", "vision_cfg", "text_cfg"} <= set(cfg):
        raise MicromotionError(f"{cfg_path}: a model config needs embed_dim, vision_cfg, text_cfg")
    cfg = dict(cfg)
    custom_text = bool(cfg.pop("custom_text", False))
    mean = cfg.get("vision_cfg", {}).get("image_mean") or OPENAI_MEAN
    std = cfg.get("vision_cfg", {}).get("image_std") or OPENAI_STD
    cls = CustomTextCLIP if custom_text else CLIP
    model = _build(lambda: cls(**cfg), f"{cfg_path}")
    _load_weights(model, weights, str(parsed))
    return ClipModel(
        model.to(device), spec=str(parsed), mean=mean, std=std, weights_sha256=sha256_file(weights)
    )


def _build(factory: Any, what: str) -> torch.nn.Module:
    # open_clip logs "No pretrained weights loaded ... initialized randomly" on the root
    # logger for every empty model; ours are filled right after, so that line would mislead.
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        return factory()
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise MicromotionError(f"{what}: cannot build this CLIP ({exc})") from None
    finally:
        logging.disable(previous)


def _load_weights(model: torch.nn.Module, path: Path, spec: str) -> None:
    import open_clip

    try:
        open_clip.load_checkpoint(model, str(path), strict=True, weights_only=True)
    except Exception as exc:  # any failure on a user's file is one line
        # A broken file fails in many ways inside open_clip and safetensors (SafetensorError,
        # a bare StopIteration for an empty dict, AttributeError for a list...). A torch file
        # that failed is read again by our own safe loader, whose message names what the file
        # asked for: torch's own advice (load it with weights_only=False) is never relayed, as
        # the file may be hostile.
        if path.suffix not in (".safetensors", ".npz", ".npy"):
            load_torch_file(path, what=f"CLIP weights for {spec}")
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights_only" in first or "weights only" in first.lower():
            first = "not a weights-only file of tensors"
        raise MicromotionError(
            f"{path}: not usable CLIP weights for {spec} ({first[:200]})"
        ) from None
