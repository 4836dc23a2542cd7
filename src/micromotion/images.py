"""Compatibility: the import path of micromotion ≤ 0.1 for image helpers.

Use :mod:`micromotion.media.images` instead; this module only re-exports it.
"""

from micromotion.media.images import (
    fit_square,
    from_uint8,
    load_image,
    read_rgb,
    save_png,
    to_uint8,
)

__all__ = ["fit_square", "from_uint8", "load_image", "read_rgb", "save_png", "to_uint8"]
