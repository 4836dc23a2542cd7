"""Shared test helpers (imported as ``helpers``; ``tests/`` is on pytest's pythonpath)."""

from __future__ import annotations

import math
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import torch

from micromotion.testing import randomise, tiny_config, tiny_generator

__all__ = [
    "DATA",
    "REFERENCE",
    "SHARED",
    "TINY_CLIP",
    "randomise",
    "tiny_clip_module",
    "tiny_config",
    "tiny_generator",
    "write_lossless_mp4",
    "zoo_entry",
]

SHARED = Path(__file__).resolve().parents[2] / "shared"
REFERENCE = SHARED / "reference"
#: Stored reference outputs (parity regressions, FFHQ recipe crops).
DATA = Path(__file__).resolve().parent / "data"


def zoo_entry(
    urls, *, sha256=None, name="thing", kind="generator", aliases=(), filename="thing.bin"
):
    """A test zoo entry for ``urls``."""
    from micromotion.hub import ZooEntry

    return ZooEntry(
        name=name,
        kind=kind,
        urls=tuple(urls),
        filename=filename,
        sha256=sha256,
        format="raw",
        license="test",
        origin="test",
        description="test asset",
        aliases=aliases,
    )


#: A tiny open_clip CLIP: same classes as ViT-B-32, a few thousand times smaller. The text
#: tower keeps the bundled tokenizer's 49 408-token vocabulary.
TINY_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 64, "patch_size": 16, "width": 32, "layers": 1, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def tiny_clip_module(seed: int = 0):
    from open_clip.model import CLIP

    torch.manual_seed(seed)
    model = CLIP(**TINY_CLIP)
    with torch.no_grad():  # like OpenAI's CLIP: exp(logit_scale) = 100, so the loss is 1 - cos
        model.logit_scale.fill_(math.log(100))
    return model


def write_lossless_mp4(path, frames: np.ndarray, fps: float = 10) -> None:
    """H.264 in 4:4:4 at CRF 0: what goes in comes out, so the test measures our pipeline."""
    h, w = frames.shape[1:3]
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (w, h),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv444p",
        output_params=["-crf", "0"],
        macro_block_size=1,
    )
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
