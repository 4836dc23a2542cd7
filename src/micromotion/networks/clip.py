"""CLIP for text anchors: a frozen open_clip model that embeds generator images and prompts.

Images are fed the way the paper's code (StyleCLIP ``criteria/clip_loss.py``) feeds them:
the generator's ``[-1, 1]`` output, upsampled ×7 (nearest) and average-pooled by
``R // 32``, which for ``R`` a multiple of 32 is exact area resampling to 224 px. We compute
that same area resampling directly as two small matrix products (no ×7 intermediate image,
which at 1024 px would be 7168² per image), for any resolution and any CLIP input size.
StyleCLIP then passes the ``[-1, 1]`` pixels to CLIP without CLIP's mean/std normalisation;
:meth:`ClipModel.image_embeds` normalises by default, and ``normalize=False`` reproduces the
paper. Loading lives in :mod:`micromotion.weights.clip`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, cast

import torch
from torch.nn import functional as F

from micromotion.errors import MicromotionError

#: CLIP's own input normalisation (OpenAI's training statistics, in [0, 1] pixel units).
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


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


class _OpenClipModule(Protocol):
    """The part of open_clip's ``CLIP``/``CustomTextCLIP`` that :class:`ClipModel` uses.

    open_clip ships no type information, and ``torch.nn.Module`` types unknown attributes as
    ``Tensor | Module``, so the model is viewed through this protocol to call its methods.
    """

    logit_scale: torch.Tensor

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """Image embeddings (not normalised)."""
        ...

    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        """Text embeddings (not normalised)."""
        ...


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
    def _open_clip(self) -> _OpenClipModule:
        """``model`` as the open_clip model it is (a typing view: the same object)."""
        return cast(_OpenClipModule, self.model)

    @property
    def logit_scale(self) -> torch.Tensor:
        """CLIP's learned temperature ``exp(logit_scale)`` (100 for OpenAI's models)."""
        return self._open_clip.logit_scale.detach().exp()

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
        return F.normalize(self._open_clip.encode_image(x), dim=-1)

    def text_embeds(self, prompts: Sequence[str]) -> torch.Tensor:
        """Unit-norm text embeddings ``[P, D]`` of the prompts (no gradient)."""
        if isinstance(prompts, str) or not prompts:
            raise MicromotionError("give a non-empty list of prompts")
        tokens = self.tokenizer(list(prompts)).to(self.device)
        with torch.no_grad():
            return F.normalize(self._open_clip.encode_text(tokens), dim=-1)
