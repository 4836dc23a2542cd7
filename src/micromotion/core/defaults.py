"""Defaults that the command line shows in its help, kept free of torch so that it starts fast.

Each is re-exported by the module that uses it (:mod:`micromotion.anchors.text`,
:mod:`micromotion.weights.clip`, :mod:`micromotion.weights.micromotion`,
:mod:`micromotion.pipelines.paper`); look for their sources there.
"""

from __future__ import annotations

#: The paper's degree words (``main.py``: ``no, 10%, …, 100%``).
DEFAULT_DEGREES = ("no", "10%", "20%", "30%", "40%", "50%", "60%", "70%", "80%", "90%", "100%")

#: The paper's CLIP (StyleCLIP ``clip.load("ViT-B/32")``), in open_clip's naming.
DEFAULT_CLIP = "ViT-B-32:openai"

#: The paper's five directions, shipped inside the package (its ``pregen_latents``).
PACKAGED_DIRECTIONS = ("smile", "angry", "aging", "eyesClose", "headsTurn")

#: ``main.py --category``: the five shipped directions, or ``custom`` (a new one from text).
PAPER_CATEGORIES = (*PACKAGED_DIRECTIONS, "custom")
