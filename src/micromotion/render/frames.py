"""Step 3 — render the codes of a clip in batches, as uint8 frames."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from micromotion.errors import MicromotionError, ParameterError
from micromotion.media.images import to_uint8
from micromotion.networks.stylegan2 import Generator, NoiseMode
from micromotion.render.codes import loop_indices

#: How a rendered frame becomes 8-bit: ours (clip) or the paper's renderer (per-frame min-max).
NORMALIZE = ("clamp", "minmax")


def render_frames(
    G: Generator,
    codes: torch.Tensor,
    *,
    loop: str = "none",
    batch_size: int = 8,
    noise_mode: NoiseMode = "const",
    callback: Callable[[int], None] | None = None,
    normalize: str = "clamp",
) -> Iterator[np.ndarray]:
    """Render codes ``[T, num_ws, w_dim]`` and yield uint8 frame batches ``[B, R, R, 3]``.

    Each code is rendered once; with ``loop="pingpong"`` the frames are replayed in reverse
    from memory instead of being rendered again.

    Args:
        G: The generator.
        codes: One W+ code per frame.
        loop: ``none`` or ``pingpong``.
        batch_size: Frames per synthesis pass.
        noise_mode: Noise of the synthesis network (``const`` keeps the texture still).
        callback: Called with the number of frames rendered after each batch.
        normalize: ``clamp`` (values outside [-1, 1] are clipped) or ``minmax``: each frame
            stretched from its own minimum to its maximum, as the paper's renderer does
            (``utils.save_image(..., normalize=True)``); a frame's colours then shift
            with its extremes.
    """
    if normalize not in NORMALIZE:
        raise ParameterError("normalize", f"{normalize!r}: choose clamp or minmax")
    order = loop_indices(codes.shape[0], loop)
    keep: list[np.ndarray] = []
    device = G.w_avg.device
    with torch.inference_mode():
        for start in range(0, codes.shape[0], batch_size):
            batch = codes[start : start + batch_size].to(device)
            images = G.synthesis(batch, noise_mode=noise_mode)  # [B, 3, R, R]
            if not torch.isfinite(images).all():
                # Codes this far out overflow inside the network: black frames otherwise.
                raise MicromotionError(
                    f"frames {start}-{start + batch.shape[0] - 1}: the generator's output is not "
                    "finite for these codes; the edit is too strong (use a smaller strength)"
                )
            if normalize == "minmax":
                low = images.amin(dim=(1, 2, 3), keepdim=True)  # [B, 1, 1, 1]
                span = (images.amax(dim=(1, 2, 3), keepdim=True) - low).clamp_min(1e-12)
                images = (images - low) / span * 2 - 1
            frames = to_uint8(images)
            if loop != "none":
                keep.extend(frames)
            if callback is not None:
                callback(frames.shape[0])
            yield frames
    tail = order[codes.shape[0] :]
    for start in range(0, len(tail), batch_size):
        yield np.stack([keep[i] for i in tail[start : start + batch_size]])
