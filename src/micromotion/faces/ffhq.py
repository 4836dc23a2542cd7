"""FFHQ alignment: the recipe that built the FFHQ data set, at any output size.

Alignment follows the recipe of Karras et al. 2019 (``recreate_aligned_images``): an oriented
square ("quad") is placed from the eyes and mouth, the photo is shrunk, cropped and padded
around it, and the quad is resampled to a square image. StyleGAN2 generators trained on FFHQ
expect exactly this framing, so inversion needs it. Pure: arrays in, arrays out.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from micromotion.errors import MicromotionError
from micromotion.faces.geometry import (
    AlignedFace,
    _check_image,
    _frozen_array,
    ffhq_quad,
    quad_size,
    quad_transform,
)

# ----------------------------------------------------------------------------------------------
# FFHQ resampling


def _gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of ``[H, W, C]`` float32 over H and W, as ``scipy.ndimage.gaussian_filter``.

    Same kernel (truncated at 4 sigma) and edge mode (``reflect``, i.e. edge pixel repeated) as
    the SciPy call the recipe makes, without depending on SciPy; done with float32 FFTs along
    each axis (torch is already a dependency) because the recipe's sigma is 2 % of the face size,
    up to ~80 px, where a direct convolution is slow. Agrees with SciPy to ~1e-4 on 0-255 values.
    """
    import torch

    radius = int(4.0 * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    out = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))
    for axis in (0, 1):
        moved = out.movedim(axis, -1)  # [..., n]: filter along the last axis
        n = moved.shape[-1]
        padded = np.pad(
            moved.numpy(), [(0, 0)] * (moved.ndim - 1) + [(radius, radius)], mode="symmetric"
        )
        length = padded.shape[-1]
        # A circular convolution of length `length` is exact on the n outputs we keep: each
        # reads only samples within `radius`, all inside the padded signal.
        kernel = np.zeros(length)
        kernel[: radius + 1] = taps[radius:]
        kernel[length - radius :] = taps[:radius]
        spectrum = torch.fft.rfft(torch.from_numpy(padded), dim=-1)
        spectrum *= torch.fft.rfft(torch.from_numpy(kernel).float())
        full = torch.fft.irfft(spectrum, n=length, dim=-1)
        out = full[..., radius : radius + n].movedim(-1, axis)
    return out.contiguous().numpy()


def _pad_and_blend(img: np.ndarray, pad: tuple[int, int, int, int], qsize: float) -> np.ndarray:
    """Reflect-pad ``[H, W, 3]`` uint8 by ``(left, top, right, bottom)`` and hide the seams.

    The recipe's treatment: the mirrored border is blurred more the further it lies from the
    photo and then faded to the photo's median colour, so the generator sees a soft background
    rather than mirrored copies of the face.
    """
    left, top, right, bottom = pad
    work = np.pad(img.astype(np.float32), ((top, bottom), (left, right), (0, 0)), mode="reflect")
    h, w, _ = work.shape
    ys = np.arange(h, dtype=np.float32)[:, None, None]  # [h, 1, 1]
    xs = np.arange(w, dtype=np.float32)[None, :, None]  # [1, w, 1]
    # mask: 0 on the photo's edge, rising to 1 at the outer edge of the padding (negative inside).
    mask = np.maximum(
        1.0 - np.minimum(xs / np.float32(left), (w - 1 - xs) / np.float32(right)),
        1.0 - np.minimum(ys / np.float32(top), (h - 1 - ys) / np.float32(bottom)),
    )  # [h, w, 1]
    blur = qsize * 0.02
    work += (_gaussian_blur(work, blur) - work) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    work += (np.median(work, axis=(0, 1)) - work) * np.clip(mask, 0.0, 1.0)
    return np.clip(np.rint(work), 0, 255).astype(np.uint8)


def _bounds(quad: np.ndarray) -> tuple[int, int, int, int]:
    """Integer bounding box ``(left, top, right, bottom)`` around ``quad``."""
    return (
        math.floor(quad[:, 0].min()),
        math.floor(quad[:, 1].min()),
        math.ceil(quad[:, 0].max()),
        math.ceil(quad[:, 1].max()),
    )


def align_face(
    image: np.ndarray,
    landmarks: np.ndarray,
    *,
    size: int = 1024,
    transform_size: int | None = None,
    pad: bool = True,
) -> AlignedFace:
    """Crop one face from ``image`` the way FFHQ was made.

    Steps of the recipe: shrink the photo by an integer factor when the quad is much larger than
    the output (antialiased), crop around the quad with a 10 % border, reflect-pad where the quad
    leaves the photo (blurred and faded, see :func:`_pad_and_blend`), resample the quad to a
    ``transform_size`` square bilinearly, then resize to ``size`` (antialiased).

    After a shrink the recipe divides the quad by the shrink factor, which ignores that pixel
    centres sit half a pixel in (and that the shrunken size was rounded): the region it samples
    is off the nominal quad by up to half a shrunken pixel. We do the same, so crops match the
    recipe's (the FFHQ generator's training data) pixel for pixel, and report the region that
    was actually sampled: ``quad`` and ``transform`` are exact.

    Args:
        image: ``[H, W, 3]`` uint8 RGB photo.
        landmarks: ``[68, 2]`` landmarks ``(x, y)`` in ``image`` pixels.
        size: Side of the output in pixels.
        transform_size: Side of the intermediate bilinear resampling. The recipe uses 4096 so
            that bilinear sampling never skips source pixels (it aliases when shrinking); the
            default, ``None``, picks the smallest size that achieves the same, the quad's side
            in (shrunken) photo pixels, clamped to ``[size, 4 * size]``: 4096 only for faces
            that need it. Pass 4096 for the recipe verbatim.
        pad: Pad (and blend) where the quad leaves the photo, as the recipe does; without it
            those regions are black.

    Returns:
        The aligned face; its ``transform`` maps aligned pixels to ``image`` pixels.

    Raises:
        MicromotionError: If the landmarks are degenerate.
    """
    image = _check_image(image)
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    landmarks = _frozen_array(landmarks, (68, 2), "landmarks")
    quad = ffhq_quad(landmarks)  # [4, 2] original pixels
    qsize = quad_size(quad)
    if qsize < 4:
        raise MicromotionError(f"face too small ({qsize:.0f} px); cannot align")

    img = Image.fromarray(image)
    work = quad.copy()  # the quad in the working image's pixel coordinates   [4, 2]
    sampled = quad  # the photo region the crop shows (moves by a fraction of a pixel on shrink)

    # Shrink: a photo much larger than the output is first reduced by an integer factor with a
    # proper antialiasing filter, so the later bilinear resampling need not reduce much.
    shrink = math.floor(qsize / size * 0.5)
    if shrink > 1:
        new_w = round(img.width / shrink)
        new_h = round(img.height / shrink)
        scale = np.array([new_w / img.width, new_h / img.height])  # [2]
        img = img.resize((new_w, new_h), Image.Resampling.LANCZOS)
        work = work / shrink  # as the recipe does
        # What that quad covers in the photo: pixel centres scale about the outer corner.
        sampled = (work + 0.5) / scale - 0.5
        qsize /= shrink

    # Crop: keep the quad plus a border, so later steps touch as few pixels as possible.
    border = max(round(qsize * 0.1), 3)
    left, top, right, bottom = _bounds(work)
    crop = (
        max(left - border, 0),
        max(top - border, 0),
        min(right + border, img.width),
        min(bottom + border, img.height),
    )
    if crop[2] - crop[0] < img.width or crop[3] - crop[1] < img.height:
        img = img.crop(crop)
        work = work - np.array(crop[:2], dtype=np.float64)

    # Pad: where the quad (plus border) leaves the photo, mirror the photo outward.
    left, top, right, bottom = _bounds(work)
    padding = (
        max(-left + border, 0),
        max(-top + border, 0),
        max(right - img.width + border, 0),
        max(bottom - img.height + border, 0),
    )
    if pad and max(padding) > border - 4:
        # Once any side needs padding, every side gets at least 30 % of the face, which keeps
        # the mask ramps (and the blur) wide enough to hide the seams.
        pad_l, pad_t, pad_r, pad_b = (max(p, round(qsize * 0.3)) for p in padding)
        padding = (pad_l, pad_t, pad_r, pad_b)
        img = Image.fromarray(_pad_and_blend(np.asarray(img), padding, qsize))
        work = work + np.array(padding[:2], dtype=np.float64)

    # Transform: bilinear resampling of the quad onto a square. PIL's continuous coordinates put
    # pixel centres at +0.5, hence the shift.
    if transform_size is None:
        transform_size = int(min(max(size, math.ceil(qsize)), 4 * size))
    out = img.transform(
        (transform_size, transform_size),
        Image.Transform.QUAD,
        (work + 0.5).flatten().tolist(),
        Image.Resampling.BILINEAR,
    )
    if size != transform_size:
        out = out.resize((size, size), Image.Resampling.LANCZOS)
    return AlignedFace(
        image=np.asarray(out, dtype=np.uint8),
        quad=_frozen_array(sampled, (4, 2), "quad"),
        landmarks=landmarks,
        transform=_frozen_array(quad_transform(sampled, size), (3, 3), "transform"),
    )
