"""Step 3: the codes of a clip, w + t·Σ s·d, and the frame order of a loop."""

from __future__ import annotations

import pytest
import torch

from micromotion import Micromotion, ParameterError
from micromotion.render import clip_codes, loop_indices


def test_clip_codes_go_from_w_to_the_full_composed_edit():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(4, 6, generator=gen)
    d1, d2 = torch.randn(4, 6, generator=gen), torch.randn(4, 6, generator=gen)
    mask = torch.tensor([True, False, True, True])
    a = Micromotion(direction=d1, mask=torch.ones(4, dtype=torch.bool))
    b = Micromotion(direction=d2, mask=mask)
    codes = clip_codes(w, [(a, 2.0), (b, -1.5)], frames=5)  # [5, 4, 6]
    assert codes.shape == (5, 4, 6)
    torch.testing.assert_close(codes[0], w)
    expected = w + 2.0 * d1 - 1.5 * d2 * mask[:, None]
    torch.testing.assert_close(codes[-1], expected)
    torch.testing.assert_close(codes[2], (codes[0] + codes[-1]) / 2)  # a straight line


def test_bad_frames_and_loops_name_the_parameter():
    mm = Micromotion(direction=torch.ones(2, 3), mask=torch.ones(2, dtype=torch.bool))
    with pytest.raises(ParameterError, match="frames 1: need at least 2"):
        clip_codes(torch.zeros(2, 3), [(mm, 1.0)], frames=1)
    with pytest.raises(ParameterError, match="loop 'back'"):
        loop_indices(4, "back")
    assert loop_indices(4, "pingpong") == [0, 1, 2, 3, 2, 1]
