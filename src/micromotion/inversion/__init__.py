"""GAN inversion: the code that makes the generator reproduce an image (photos, video frames).

:func:`invert` is an optimisation projector in the manner of StyleGAN2's; encoder
initialisation plugs in through its ``init_ws``.
"""

from micromotion.inversion.projector import (
    PIXEL_LOSS_NAME,
    InversionConfig,
    InversionResult,
    LossFn,
    check_schedule,
    invert,
    lr_ramp,
    multiscale_pixel_loss,
    psnr,
)

__all__ = [
    "PIXEL_LOSS_NAME",
    "InversionConfig",
    "InversionResult",
    "LossFn",
    "check_schedule",
    "invert",
    "lr_ramp",
    "multiscale_pixel_loss",
    "psnr",
]
