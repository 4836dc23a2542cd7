"""Rendering frames: ours clamps, the paper's renderer stretches each frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from micromotion.errors import ParameterError
from micromotion.render.frames import render_frames
from micromotion.testing import tiny_generator


def test_minmax_normalisation_is_the_papers_per_frame_stretch():
    """--normalize minmax: each frame from its own minimum to its maximum, like save_image."""
    G = tiny_generator(0)
    codes = G.w_avg[None, None].repeat(3, G.num_ws, 1) + torch.randn(3, G.num_ws, G.w_dim)
    got = np.concatenate(list(render_frames(G, codes, normalize="minmax", batch_size=2)))
    with torch.no_grad():
        raw = G.synthesis(codes, noise_mode="const")
    for i in range(3):
        x = raw[i]
        expected = ((x - x.min()) / (x.max() - x.min()) * 255).round().permute(1, 2, 0).numpy()
        assert np.abs(got[i].astype(float) - expected).max() <= 1  # rounding of the last bit
        assert got[i].min() == 0 and got[i].max() == 255
    clamped = np.concatenate(list(render_frames(G, codes)))
    assert not np.array_equal(clamped, got)
    with pytest.raises(ParameterError, match="normalize"):
        list(render_frames(G, codes, normalize="stretch"))
