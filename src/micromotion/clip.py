"""CLIP for text anchors: load an open_clip model and embed generator images and prompts.

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

Images are fed the way the paper's code (StyleCLIP ``criteria/clip_loss.py``) feeds them:
the generator's ``[-1, 1]`` output, upsampled ×7 (nearest) and average-pooled by
``R // 32``, which for ``R`` a multiple of 32 is exact area resampling to 224 px. We compute
that same area resampling directly as two small matrix products (no ×7 intermediate image,
which at 1024 px would be 7168² per image), for any resolution and any CLIP input size.
StyleCLIP then passes the ``[-1, 1]`` pixels to CLIP without CLIP's mean/std normalisation;
:meth:`ClipModel.image_embeds` normalises by default, and ``normalize=False`` reproduces the
paper.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from micromotion._io import require_file
from micromotion.errors import MicromotionError

#: The paper's CLIP (StyleCLIP ``clip.load("ViT-B/32")``), in open_clip's naming.
DEFAULT_CLIP = "ViT-B-32:openai"

#: CLIP's own input normalisation (OpenAI's training statistics, in [0, 1] pixel units).
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".safetensors")


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
        return self.weights.endswith(_WEIGHT_SUFFIXES) or os.sep in self.weights

    def __str__(self) -> str:
        return f"{self.model}:{self.weights}"


def parse_clip_spec(spec: str) -> ClipSpec:
    """Split ``MODEL:WEIGHTS`` at its first colon (model names and tags hold none)."""
    model, sep, weights = spec.partition(":")
    if not sep or not model or not weights:
        raise MicromotionError(
            f"--clip {spec!r}: expected MODEL:WEIGHTS, e.g. {DEFAULT_CLIP} or "
            "ViT-B-32-quickgelu:/path/to/weights.bin"
        )
    return ClipSpec(model, weights)


def area_resize_matrix(src: int, dst: int, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``[dst, src]`` weights of box-filter (area) resampling along one axis.

    Output pixel ``i`` averages the source interval ``[i·src/dst, (i+1)·src/dst)``, source
    pixels weighted by how much of them the interval covers. For ``src = 32·k`` and
    ``dst = 224`` this equals StyleCLIP's ``Upsample(scale_factor=7)`` then
    ``AvgPool2d(k)``; when ``dst > src`` it is nearest-neighbour upsampling (by whole
    multiples) or its area-weighted generalisation.
    """
    edges = torch.arange(dst + 1, dtype=torch.float64) * (src / dst)  # output edges, src units
    lo, hi = edges[:-1, None], edges[1:, None]  # [dst, 1]
    pix = torch.arange(src, dtype=torch.float64)[None]  # [1, src]
    overlap = (torch.minimum(hi, pix + 1) - torch.maximum(lo, pix)).clamp_min(0)
    return (overlap / overlap.sum(dim=1, keepdim=True)).to(dtype)


def resize_for_clip(images: torch.Tensor, size: int) -> torch.Tensor:
    """Area-resample ``[N, C, H, W]`` to ``[N, C, size, size]``, differentiably."""
    _, _, h, w = images.shape
    if (h, w) == (size, size):
        return images
    rows = area_resize_matrix(h, size).to(images.device, images.dtype)  # [size, H]
    cols = area_resize_matrix(w, size).to(images.device, images.dtype)  # [size, W]
    return rows @ images @ cols.T


class ClipModel:
    """A frozen open_clip model with the embedding functions text anchors need.

    Attributes:
        model: The open_clip ``CLIP`` module (eval mode, no gradients for its weights).
        tokenizer: Callable ``list[str] -> LongTensor [P, context_length]``.
        spec: What was loaded, for provenance (``ViT-B-32:openai``, a file, or ``custom``).
        image_size: CLIP's input resolution.
        mean, std: CLIP's input normalisation, per channel, for [0, 1] pixels.
        weights_sha256: sha256 of a local weights file, when one was loaded.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        tokenizer: Any = None,
        spec: str = "custom",
        mean: Sequence[float] = OPENAI_MEAN,
        std: Sequence[float] = OPENAI_STD,
        weights_sha256: str | None = None,
    ) -> None:
        """Wrap an already-built open_clip model (weights frozen, switched to eval mode).

        Args:
            model: An open_clip ``CLIP``/``CustomTextCLIP``.
            tokenizer: open_clip tokenizer; default: the bundled BPE tokenizer at the model's
                context length (its vocabulary has 49 408 tokens: the text tower must match).
            spec: What to record as the CLIP's name.
            mean: Per-channel normalisation mean, for [0, 1] pixels.
            std: Per-channel normalisation std.
            weights_sha256: Hash of the weights file, for provenance.
        """
        import open_clip

        self.model = model.eval().requires_grad_(False)
        if tokenizer is None:
            context = int(getattr(model, "context_length", 77))
            tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=context)
        self.tokenizer = tokenizer
        self.spec = spec
        size = getattr(model.visual, "image_size", 224)
        self.image_size = int(size[0] if isinstance(size, tuple | list) else size)
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        self.weights_sha256 = weights_sha256

    @property
    def device(self) -> torch.device:
        """The device of the model's weights."""
        return next(self.model.parameters()).device

    @property
    def logit_scale(self) -> torch.Tensor:
        """CLIP's learned temperature ``exp(logit_scale)`` (100 for OpenAI's models)."""
        return self.model.logit_scale.detach().exp()

    def to(self, device: str | torch.device) -> ClipModel:
        """Move the model to ``device`` (in place); returns ``self``."""
        self.model.to(device)
        return self

    def preprocess(self, images: torch.Tensor, *, normalize: bool = True) -> torch.Tensor:
        """Generator images ``[N, 3, R, R]`` in [-1, 1] → CLIP input ``[N, 3, S, S]``.

        Area resampling to CLIP's size (StyleCLIP's upsample-then-average-pool, see the
        module docstring), then CLIP's mean/std normalisation of the [0, 1] image; with
        ``normalize=False`` the [-1, 1] pixels are passed as they are, as the paper's code does.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise MicromotionError(f"images must be [N, 3, H, W], got {list(images.shape)}")
        x = resize_for_clip(images, self.image_size)
        if not normalize:
            return x
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return ((x + 1) / 2 - mean) / std

    def image_embeds(self, images: torch.Tensor, *, normalize: bool = True) -> torch.Tensor:
        """Unit-norm image embeddings ``[N, D]``; differentiable w.r.t. ``images``."""
        x = self.preprocess(images.to(self.device), normalize=normalize)
        return F.normalize(self.model.encode_image(x), dim=-1)

    def text_embeds(self, prompts: Sequence[str]) -> torch.Tensor:
        """Unit-norm text embeddings ``[P, D]`` of the prompts (no gradient)."""
        if isinstance(prompts, str) or not prompts:
            raise MicromotionError("give a non-empty list of prompts")
        tokens = self.tokenizer(list(prompts)).to(self.device)
        with torch.no_grad():
            return F.normalize(self.model.encode_text(tokens), dim=-1)


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
        raise MicromotionError(
            f"--clip {spec}: unknown open_clip model {parsed.model!r} (see open_clip.list_models(),"
            " or pass a model-config .json)"
        )
    if parsed.weights_is_file:
        path = require_file(parsed.weights, what="a CLIP weights file")
        model = _build(lambda: open_clip.create_model(parsed.model, weights_only=True), spec)
        _load_weights(model, path, spec)
        return ClipModel(
            model.to(device), spec=spec, tokenizer=open_clip.get_tokenizer(parsed.model),
            weights_sha256=_sha256(path),
        )  # fmt: skip
    cfg = open_clip.get_pretrained_cfg(parsed.model, parsed.weights)
    if not cfg:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(parsed.model)) or "none"
        raise MicromotionError(
            f"--clip {spec}: {parsed.weights!r} is not a weights file or a pretrained tag of "
            f"{parsed.model} (tags: {tags})"
        )
    path = _fetch_pretrained(cfg, spec)
    model = _build(
        lambda: open_clip.create_model(
            parsed.model, force_quick_gelu=bool(cfg.get("quick_gelu", False)), weights_only=True
        ),
        spec,
    )
    _load_weights(model, Path(path), spec)
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
        raise MicromotionError(f"--clip {spec}: unknown open_clip model {parsed.model!r}")
    if parsed.weights_is_file:
        require_file(parsed.weights, what="a CLIP weights file")
        return
    cfg = open_clip.get_pretrained_cfg(parsed.model, parsed.weights)
    if not cfg:
        raise MicromotionError(f"--clip {spec}: unknown pretrained tag {parsed.weights!r}")
    _fetch_pretrained(cfg, spec)


def _fetch_pretrained(cfg: dict[str, Any], spec: str) -> str:
    from open_clip.pretrained import download_pretrained

    try:
        path = download_pretrained(cfg)
    except Exception as exc:  # huggingface_hub / urllib raise many kinds when offline
        raise MicromotionError(
            f"CLIP weights for {spec} are not available here ({type(exc).__name__}): fetch them "
            "once online (open_clip caches them in the Hugging Face cache, HF_HOME; "
            "HF_HUB_OFFLINE=1 then uses the cache) or pass --clip MODEL:/path/to/weights file"
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
        model.to(device), spec=str(parsed), mean=mean, std=std, weights_sha256=_sha256(weights)
    )


def _build(factory: Any, what: str) -> torch.nn.Module:
    try:
        return factory()
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise MicromotionError(f"{what}: cannot build this CLIP ({exc})") from None


def _load_weights(model: torch.nn.Module, path: Path, spec: str) -> None:
    import open_clip

    try:
        open_clip.load_checkpoint(model, str(path), strict=True, weights_only=True)
    except Exception as exc:  # any failure on a user's file is one line
        # A broken file fails in many ways inside open_clip and safetensors (SafetensorError,
        # a bare StopIteration for an empty dict, AttributeError for a list...).
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MicromotionError(
            f"{path}: not usable CLIP weights for {spec} ({first[:200]})"
        ) from None


def _sha256(path: Path) -> str:
    from micromotion._io import sha256_file

    return sha256_file(path)
