"""How a rendered clip behaves: smoothness, identity along it, agreement with its text.

Pure functions over float frames ``[T, 3, R, R]`` in ``[-1, 1]`` (what the generator renders,
clamped), or over embeddings of them; the networks (LPIPS, IR-SE50, CLIP) are passed in, never
loaded here.

* Smoothness: :func:`frame_distances` and :func:`spread`.
* Identity: :func:`identity_similarity` (each frame against frame 0) and
  :func:`temporal_identity`, the video-editing literature's temporal consistency (STIT,
  Tzaban et al. 2022): TL-ID, the mean cosine of adjacent frames, and TG-ID, the mean over
  all pairs of frames.
* Text: :func:`degree_positions`, :func:`frame_degrees`, :func:`text_alignment` (CLIP
  similarity of each frame to its degree's prompt) and :func:`directional_similarity`
  (StyleGAN-NADA's CLIP direction: image change against text change).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import torch
from torch.nn import functional as F

from micromotion.errors import MicromotionError
from micromotion.networks.clip import ClipModel
from micromotion.networks.irse import IdentityLoss

#: ``distance(x, y) -> [N]`` between image batches ``[N, 3, R, R]`` in [-1, 1] (LPIPS).
Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_frames(frames: torch.Tensor) -> None:
    if frames.ndim != 4 or frames.shape[0] < 2:
        raise MicromotionError(f"a clip must be [T ≥ 2, C, H, W] frames, got {list(frames.shape)}")
    if not torch.isfinite(frames).all():
        raise MicromotionError("the frames contain NaN or inf")


def frame_distances(frames: torch.Tensor, *, distance: Distance | None = None) -> torch.Tensor:
    """Distance between each pair of consecutive frames: ``[T − 1]`` float64.

    Args:
        frames: ``[T, 3, R, R]`` in ``[-1, 1]``.
        distance: A perceptual distance such as LPIPS; default the pixel RMSE on the
            ``[0, 1]`` scale (0 for equal frames, 1 for black against white).
    """
    _check_frames(frames)
    a, b = frames[:-1], frames[1:]  # [T − 1, 3, R, R] each
    if distance is None:
        # RMSE of (x + 1)/2: half the RMSE in [-1, 1].
        out = 0.5 * (a - b).double().square().flatten(1).mean(dim=1).sqrt()
    else:
        out = distance(a, b).detach().double().reshape(-1)
    if not torch.isfinite(out).all():
        raise MicromotionError("a frame distance is NaN or inf")
    return out


def spread(values: torch.Tensor) -> dict[str, float]:
    """Mean, standard deviation, minimum, maximum of ``values``, and ``std / mean`` (``cv``).

    For frame distances, a smooth clip has a small, even step: a low ``cv`` and a ``max``
    close to the ``mean`` (a jump shows as one large ``max``). ``cv`` is 0 when every step is 0.
    """
    v = values.double().reshape(-1)
    if v.numel() == 0:
        raise MicromotionError("no values to summarise")
    mean = float(v.mean())
    std = float(v.std(unbiased=False))
    return {
        "mean": mean,
        "std": std,
        "min": float(v.min()),
        "max": float(v.max()),
        "cv": std / mean if mean > 0 else 0.0,
    }


def identity_similarity(id_model: IdentityLoss, frames: torch.Tensor) -> torch.Tensor:
    """ArcFace (IR-SE50) cosine of each frame to frame 0: ``[T]`` float64, ``1`` at frame 0.

    Args:
        id_model: The identity model (frozen).
        frames: ``[T, 3, R, R]`` in ``[-1, 1]``.
    """
    emb = identity_embeddings(id_model, frames)  # [T, D], unit norm
    return (emb * emb[:1]).sum(dim=1).clamp(-1, 1)


def identity_embeddings(
    id_model: IdentityLoss, frames: torch.Tensor, *, batch: int = 8
) -> torch.Tensor:
    """Unit-norm ArcFace embeddings of each frame: ``[T, D]`` float64.

    Args:
        id_model: The identity model (frozen).
        frames: ``[T, 3, R, R]`` in ``[-1, 1]``.
        batch: Frames embedded per pass (bounds memory at 1024 px).
    """
    _check_frames(frames)
    with torch.no_grad():
        parts = [id_model.embed(frames[i : i + batch]) for i in range(0, len(frames), batch)]
    emb = F.normalize(torch.cat(parts).double(), dim=1)  # [T, D]
    if not torch.isfinite(emb).all():
        raise MicromotionError("an identity embedding is NaN or inf")
    return emb


def temporal_identity(embeddings: torch.Tensor) -> dict[str, float]:
    """TL-ID and TG-ID of a clip from its unit-norm identity embeddings ``[T, D]``.

    TL-ID (local) is the mean cosine of adjacent frames; TG-ID (global) the mean cosine over
    all ``T(T−1)/2`` pairs of distinct frames (STIT's definitions). Both are 1 for a clip
    whose frames all show one identity; TG-ID also sees a slow drift that TL-ID misses.

    Returns:
        ``{"tl_id": ..., "tg_id": ...}``.
    """
    if embeddings.ndim != 2 or embeddings.shape[0] < 2:
        raise MicromotionError(
            f"temporal identity needs [T ≥ 2, D] embeddings, got {list(embeddings.shape)}"
        )
    e = F.normalize(embeddings.double(), dim=1)
    gram = (e @ e.T).clamp(-1, 1)  # [T, T]
    t = e.shape[0]
    upper = torch.triu_indices(t, t, offset=1)  # [2, T(T−1)/2]
    return {
        "tl_id": float(gram.diagonal(offset=1).mean()),
        "tg_id": float(gram[upper[0], upper[1]].mean()),
    }


#: Degree words that mean "none of it" (the paper's first degree is ``no``).
_ZERO_WORDS = frozenset({"no", "none", "zero", "not", "without"})
_PERCENT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*%\s*$")


def degree_positions(degrees: Sequence[str]) -> list[float]:
    """Where each degree word sits on the motion, in ``[0, 1]``.

    ``"no"`` is 0 and ``"N%"`` is ``N/100`` when every word is one of these (the paper's
    ``no, 10%, …, 100%``); otherwise the words are taken as evenly spaced in their order
    (``k / (n − 1)``), since they are given in motion order.
    """
    if not degrees:
        raise MicromotionError("no degrees to place")
    values: list[float] = []
    for word in degrees:
        text = str(word).strip().lower()
        match = _PERCENT.match(text)
        if text in _ZERO_WORDS:
            values.append(0.0)
        elif match:
            values.append(float(match.group(1)) / 100)
        else:
            n = len(degrees)
            return [k / (n - 1) if n > 1 else 0.0 for k in range(n)]
    return values


def frame_degrees(frames: int, positions: Sequence[float]) -> list[int]:
    """For each frame ``i``, the index of the degree nearest ``i / (frames − 1)``.

    Ties go to the earlier degree.
    """
    if frames < 2 or not positions:
        raise MicromotionError("frame degrees need ≥ 2 frames and ≥ 1 degree")
    out = []
    for i in range(frames):
        t = i / (frames - 1)
        out.append(min(range(len(positions)), key=lambda k: (abs(positions[k] - t), k)))
    return out


def clip_image_embeddings(
    clip: ClipModel, frames: torch.Tensor, *, normalize: bool = True, batch: int = 8
) -> torch.Tensor:
    """Unit-norm CLIP image embeddings of each frame: ``[T, D]`` float64 (no gradient).

    Args:
        clip: The CLIP.
        frames: ``[T, 3, R, R]`` in ``[-1, 1]``.
        normalize: CLIP's own input normalisation (``False``: the paper's raw pixels).
        batch: Frames embedded per pass.
    """
    _check_frames(frames)
    with torch.no_grad():
        parts = [
            clip.image_embeds(frames[i : i + batch], normalize=normalize).cpu()
            for i in range(0, len(frames), batch)
        ]
    emb = F.normalize(torch.cat(parts).double(), dim=1)  # [T, D]
    if not torch.isfinite(emb).all():
        raise MicromotionError("a CLIP image embedding is NaN or inf")
    return emb


def text_alignment(
    image_emb: torch.Tensor, text_emb: torch.Tensor, assigned: Sequence[int]
) -> dict[str, list[float] | float]:
    """CLIP cosine of each frame to the prompt of its degree, and how often it is the best.

    Args:
        image_emb: ``[T, D]`` unit-norm frame embeddings.
        text_emb: ``[P, D]`` unit-norm prompt embeddings, one per degree.
        assigned: ``T`` prompt indices, the degree of each frame (:func:`frame_degrees`).

    Returns:
        ``similarity`` ``[T]`` (cosine to the assigned prompt), its ``mean``, and
        ``matched``: the share of frames whose most similar prompt is the assigned one.
    """
    if image_emb.ndim != 2 or text_emb.ndim != 2 or image_emb.shape[1] != text_emb.shape[1]:
        raise MicromotionError(
            f"embeddings must be [T, D] and [P, D], got {list(image_emb.shape)} and "
            f"{list(text_emb.shape)}"
        )
    if len(assigned) != image_emb.shape[0] or not all(0 <= k < len(text_emb) for k in assigned):
        raise MicromotionError("one prompt index per frame, each naming a prompt")
    sims = image_emb.double() @ text_emb.double().T  # [T, P]
    index = torch.tensor(list(assigned), dtype=torch.long)
    own = sims[torch.arange(len(index)), index]  # [T]
    best = sims.argmax(dim=1)
    return {
        "similarity": [round(float(v), 8) for v in own],
        "mean": float(own.mean()),
        "matched": float((best == index).double().mean()),
    }


def directional_similarity(
    image_start: torch.Tensor,
    image_end: torch.Tensor,
    text_start: torch.Tensor,
    text_end: torch.Tensor,
) -> float:
    """Cosine between the image change and the text change in CLIP space (StyleGAN-NADA).

    ``cos(E_I(end) − E_I(start), E_T(end) − E_T(start))`` on unit-norm embeddings ``[D]``:
    +1 when the clip moves exactly the way its text does, −1 when it moves the opposite
    way, ≈ 0 for a change CLIP does not relate to the text.

    Raises:
        MicromotionError: An embedding is not ``[D]`` or one change is zero (a null edit has
            no direction to compare).
    """
    vecs = [v.double().reshape(-1) for v in (image_start, image_end, text_start, text_end)]
    if len({v.numel() for v in vecs}) != 1:
        raise MicromotionError("the four embeddings must have one width")
    image = vecs[1] - vecs[0]
    text = vecs[3] - vecs[2]
    if float(image.norm()) == 0 or float(text.norm()) == 0:
        raise MicromotionError("directional similarity needs a non-zero image and text change")
    return float(F.cosine_similarity(image, text, dim=0).clamp(-1, 1))


__all__ = [
    "Distance",
    "clip_image_embeddings",
    "degree_positions",
    "directional_similarity",
    "frame_degrees",
    "frame_distances",
    "identity_embeddings",
    "identity_similarity",
    "spread",
    "temporal_identity",
    "text_alignment",
]
