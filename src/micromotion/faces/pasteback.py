"""Paste edited face crops back into the photo they were aligned from.

An FFHQ crop is an affine view of the photo (:attr:`AlignedFace.transform`). Each rendered
frame is warped back through that view and blended in under a soft mask around the face:
the jaw line and the eyebrows raised to cover the forehead, feathered so no seam shows. Pixels
away from the face are the photo's own, exactly, in every frame.

Coordinates follow :mod:`micromotion.faces`: pixel ``(col, row)`` has its centre at
``x = col, y = row``. PIL's ``Image.transform`` puts pixel centres at ``+0.5``; the
half-pixel shifts below convert between the two.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from micromotion.errors import MicromotionError
from micromotion.faces.geometry import AlignedFace

_JAW = list(range(0, 17))  # ear to ear along the chin
_BROWS = list(range(26, 16, -1))  # right brow to left brow, closing the polygon
_FOREHEAD = 0.45  # brows are raised by this fraction of the brow-to-chin height


def _translate(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def _scale(s: float) -> np.ndarray:
    return np.diag([s, s, 1.0])


def face_mask(landmarks: np.ndarray, resolution: int, *, feather: float = 0.04) -> np.ndarray:
    """A soft mask ``float32 [R, R]`` in [0, 1] over the face in an aligned crop.

    Args:
        landmarks: ``[68, 2]`` landmarks in the crop's pixel coordinates.
        resolution: ``R``, the crop's side.
        feather: Width of the soft edge as a fraction of ``R``.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    brows = lm[_BROWS].copy()
    height = lm[8, 1] - lm[_BROWS, 1].mean()  # brow to chin: the crop is upright
    brows[:, 1] -= _FOREHEAD * max(height, 0.0)
    polygon = np.concatenate([lm[_JAW], brows])
    # Draw at 4× and downsample: a smooth edge even on tiny crops.
    big = 4 * resolution
    canvas = Image.new("L", (big, big), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in (polygon + 0.5) * 4], fill=255)
    mask = canvas.resize((resolution, resolution), Image.Resampling.BOX)
    radius = feather * resolution
    if radius > 0:
        mask = mask.filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(mask, dtype=np.float32) / 255.0


class PasteBack:
    """Composite ``[R, R]`` crops of one aligned face back into its photo.

    Args:
        photo: ``uint8 [H, W, 3]`` the photo the face was aligned from.
        face: Its :class:`AlignedFace` (the transform from crop to photo).
        resolution: Side ``R`` of the crops to paste (the generator's resolution).
        max_side: Downscale the photo so its longest side is at most this (video sizes);
            ``None`` keeps it.
        feather: Softness of the mask edge, as a fraction of ``R``.

    The output has even width and height (H.264 needs them): an odd last row or column of the
    (downscaled) photo is dropped.
    """

    def __init__(
        self,
        photo: np.ndarray,
        face: AlignedFace,
        resolution: int,
        *,
        max_side: int | None = 1920,
        feather: float = 0.04,
    ) -> None:
        if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
            raise MicromotionError(
                f"photo must be uint8 [H, W, 3], got {photo.dtype} {list(photo.shape)}"
            )
        h, w = photo.shape[:2]
        k = 1.0
        if max_side is not None and max(h, w) > max_side:
            k = max_side / max(h, w)
            photo = np.asarray(
                Image.fromarray(photo).resize(
                    (round(w * k), round(h * k)), Image.Resampling.LANCZOS
                )
            )
        h, w = photo.shape[0] // 2 * 2, photo.shape[1] // 2 * 2
        if h < 2 or w < 2:
            raise MicromotionError("the photo is too small to paste into")
        self.photo = np.ascontiguousarray(photo[:h, :w])
        self.resolution = resolution

        # Chain, acting on column vectors: output pixel (PIL, centres at +0.5) → scaled photo
        # pixel → photo pixel → aligned pixel → crop pixel (PIL, centres at +0.5).
        to_photo = _translate(-0.5, -0.5) @ _scale(1 / k) @ _translate(0.5, 0.5)
        to_aligned = np.linalg.inv(face.transform)
        to_crop = _scale(resolution / face.size) @ _translate(0.5, 0.5)
        crop_from_scaled = to_crop @ to_aligned @ to_photo  # scaled-photo pixel → crop PIL

        # Only the crop's footprint changes: work in its bounding box.
        quad = (np.asarray(face.quad, dtype=np.float64) + 0.5) * k - 0.5
        x0, y0 = np.floor(quad.min(axis=0)).astype(int) - 1
        x1, y1 = np.ceil(quad.max(axis=0)).astype(int) + 2
        self.box = (max(x0, 0), max(y0, 0), min(x1, w), min(y1, h))
        bx0, by0, bx1, by1 = self.box
        if bx1 <= bx0 or by1 <= by0:
            raise MicromotionError("the face lies outside the photo")
        matrix = crop_from_scaled @ _translate(bx0 - 0.5, by0 - 0.5)
        self._coeffs = tuple(matrix[:2].reshape(-1))

        crop_landmarks = (face.aligned_landmarks + 0.5) * resolution / face.size - 0.5
        mask = face_mask(crop_landmarks, resolution, feather=feather)
        warped = self._warp(Image.fromarray(mask, mode="F"))
        self.mask = np.clip(warped, 0.0, 1.0)[..., None]  # [bh, bw, 1]

    def _warp(self, image: Image.Image) -> np.ndarray:
        bx0, by0, bx1, by1 = self.box
        size = (bx1 - bx0, by1 - by0)
        out = image.transform(
            size, Image.Transform.AFFINE, self._coeffs, resample=Image.Resampling.BICUBIC
        )
        return np.asarray(out, dtype=np.float32)

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """Paste ``uint8 [N, R, R, 3]`` crops: returns ``uint8 [N, H, W, 3]`` photos."""
        if crops.ndim != 4 or crops.shape[1:] != (self.resolution, self.resolution, 3):
            raise ValueError(f"expected [N, {self.resolution}, {self.resolution}, 3] crops")
        bx0, by0, bx1, by1 = self.box
        region = self.photo[by0:by1, bx0:bx1].astype(np.float32)
        out = np.repeat(self.photo[None], crops.shape[0], axis=0)
        for i, crop in enumerate(crops):
            warped = self._warp(Image.fromarray(crop))  # [bh, bw, 3]
            blended = region + self.mask * (warped - region)
            out[i, by0:by1, bx0:bx1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return out
