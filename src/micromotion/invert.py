"""Compatibility: the import path of micromotion ≤ 0.1 for inversion.

Use :mod:`micromotion.inversion` (the projector) and :mod:`micromotion.pipelines.losses`
(``select_loss``) instead; this module only re-exports them.
"""

from micromotion.inversion import InversionConfig, InversionResult, invert, psnr
from micromotion.pipelines.losses import select_loss

__all__ = ["InversionConfig", "InversionResult", "invert", "psnr", "select_loss"]
