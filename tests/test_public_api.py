"""The public API: top-level names and every import path the README documents."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import micromotion

README = Path(__file__).resolve().parents[1] / "README.md"


def test_top_level_names():
    from micromotion.subspace.micromotion import Micromotion
    from micromotion.weights.generator import load_generator
    from micromotion.weights.micromotion import load_micromotion

    assert micromotion.load_generator is load_generator
    assert micromotion.Micromotion is Micromotion
    assert micromotion.load_micromotion is load_micromotion


def test_earlier_import_paths_are_the_same_objects():
    from micromotion import direction, images, inversion, invert, subspace, weights
    from micromotion.media import images as media_images
    from micromotion.pipelines import losses

    assert direction.Micromotion is subspace.Micromotion
    assert direction.load_micromotion is weights.micromotion.load_micromotion
    assert images.read_rgb is media_images.read_rgb and images.from_uint8 is media_images.from_uint8
    assert invert.invert is inversion.invert and invert.select_loss is losses.select_loss


def test_every_import_in_the_readme_works():
    """Each `from micromotion... import a, b` line of the README's code blocks runs."""
    lines = re.findall(r"^from (micromotion[\w.]*) import ([\w, ]+)$", README.read_text(), re.M)
    assert len(lines) >= 8, lines  # the README shows the API; a parse that finds none is wrong
    for module, names in lines:
        imported = importlib.import_module(module)
        for name in names.split(","):
            assert hasattr(imported, name.strip()), f"from {module} import {name.strip()}"
