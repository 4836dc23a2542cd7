"""Step 3 — transfer and render: any face's code moves along ``w + t·Σ s·d``, frame by frame.

* :func:`clip_codes` (:mod:`.codes`) — the codes of a clip.
* :func:`render_frames` (:mod:`.frames`) — batched synthesis into uint8 frames.
"""

from micromotion.render.codes import clip_codes, loop_indices
from micromotion.render.frames import render_frames

__all__ = ["clip_codes", "loop_indices", "render_frames"]
