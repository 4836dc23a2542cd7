"""Preview strips: each tile's label under it, one row per face with its label beside it."""

from __future__ import annotations

import numpy as np
import pytest

from micromotion.media.images import STRIP_HEIGHT
from micromotion.pipelines.outputs import LABEL_BAND, labelled_strip


def tiles(faces: int | None, count: int = 3, size: int = 32) -> np.ndarray:
    """Flat grey tiles, ``[count, size, size, 3]`` (``[faces, count, ...]`` for faces)."""
    shape = (count, size, size, 3) if faces is None else (faces, count, size, size, 3)
    return np.full(shape, 100, dtype=np.uint8)


def test_labels_go_in_a_band_under_the_tiles():
    plain = labelled_strip(tiles(None))
    assert plain.shape == (STRIP_HEIGHT, 3 * STRIP_HEIGHT, 3)  # no labels: no band
    strip = labelled_strip(tiles(None), ["no", "50%", "100%"])
    assert strip.shape == (STRIP_HEIGHT + LABEL_BAND, 3 * STRIP_HEIGHT, 3)
    assert np.array_equal(strip[:STRIP_HEIGHT], plain)  # the tiles themselves are untouched
    band = strip[STRIP_HEIGHT:]
    cells = [band[:, i * STRIP_HEIGHT : (i + 1) * STRIP_HEIGHT] for i in range(3)]
    assert all(c.max() > 200 for c in cells)  # white (antialiased) text on black
    assert not np.array_equal(cells[1], cells[2])  # two degrees, two different labels
    same = labelled_strip(tiles(None), ["50%", "50%", "100%"])[STRIP_HEIGHT:]
    assert np.array_equal(same[:, :STRIP_HEIGHT], cells[1])  # a label depends on its text only


def test_one_row_per_face_with_its_seed():
    strip = labelled_strip(tiles(2), ["a", "b", "c"], ["seed 1", "seed 12"])
    gutter = strip.shape[1] - 3 * STRIP_HEIGHT
    assert gutter > 0 and strip.shape[0] == 2 * (STRIP_HEIGHT + LABEL_BAND)
    rows = [strip[r * (STRIP_HEIGHT + LABEL_BAND) :][:STRIP_HEIGHT, :gutter] for r in range(2)]
    assert all(r.max() > 200 for r in rows) and not np.array_equal(*rows)


def test_label_counts_must_match():
    with pytest.raises(ValueError, match="2 labels for 3 tiles"):
        labelled_strip(tiles(None), ["a", "b"])
    with pytest.raises(ValueError, match="1 row labels for 2 rows"):
        labelled_strip(tiles(2), row_labels=["seed 1"])
