"""Compatibility: the import path of micromotion ≤ 0.1 for micromotions.

Use :mod:`micromotion` (``Micromotion``, ``load_micromotion``), :mod:`micromotion.subspace`
or :mod:`micromotion.weights.micromotion` instead; this module only re-exports them.
"""

from micromotion.subspace.micromotion import MICROMOTION_FORMAT, Micromotion
from micromotion.weights.micromotion import ensure_converted, import_official, load_micromotion

__all__ = [
    "MICROMOTION_FORMAT",
    "Micromotion",
    "ensure_converted",
    "import_official",
    "load_micromotion",
]
