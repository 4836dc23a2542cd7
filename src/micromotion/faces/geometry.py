"""Face geometry: detections, aligned crops, and the FFHQ recipe's oriented square ("quad").

Coordinates are pixel indices (the centre of pixel ``(col, row)`` is at ``x = col, y = row``),
as dlib reports them. Everything here is pure: arrays in, arrays out, no file I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from micromotion.errors import MicromotionError

MIN_FACE = 64
"""Smallest usable quad side in original pixels (about 16 px between the eyes).

Below this the landmarks the alignment rests on are a pixel or two apart (the eye corners of a
16 px eye distance are ~4 px apart), so a one-pixel landmark error tilts or shifts the crop by
several per cent, and the crop is upsampled more than 16x for a 1024 px generator: nothing an
inversion could recover a face from.
"""

# ----------------------------------------------------------------------------------------------
# Data types


def _frozen_array(values: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """Return a read-only float64 copy of ``values``, checking its shape."""
    arr = np.array(values, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {list(shape)}, got {list(arr.shape)}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face.

    Attributes:
        box: ``(left, top, right, bottom)`` of the detector's box in original-image pixels
            (may reach slightly outside the image).
        landmarks: ``[68, 2]`` float64 ``(x, y)`` iBUG 300-W points in original-image pixels.
        score: The detector's confidence (HOG SVM margin or CNN confidence; not comparable
            between detectors).
        detector: ``"hog"`` or ``"cnn"``: which detector found it.
    """

    box: tuple[int, int, int, int]
    landmarks: np.ndarray
    score: float
    detector: Literal["hog", "cnn"]

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", tuple(int(v) for v in self.box))
        object.__setattr__(self, "landmarks", _frozen_array(self.landmarks, (68, 2), "landmarks"))
        object.__setattr__(self, "score", float(self.score))

    @property
    def area(self) -> int:
        """Area of the box in pixels (0 for a degenerate box)."""
        left, top, right, bottom = self.box
        return max(right - left, 0) * max(bottom - top, 0)


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """An FFHQ-aligned face crop and the geometry that maps it back onto the photo.

    Attributes:
        image: ``[size, size, 3]`` uint8 RGB crop.
        quad: ``[4, 2]`` corners of the crop in original pixels, in the order top-left,
            bottom-left, bottom-right, top-right of the aligned image.
        landmarks: ``[68, 2]`` landmarks in original pixels.
        transform: ``[3, 3]`` float64 affine matrix mapping aligned pixel coordinates
            ``(x, y, 1)`` to original-image pixel coordinates (its inverse goes the other way).
        face: The detection the crop was made from, when it came from :func:`align_image`.
        index: Position of ``face`` among the detections (0 = largest), when known.
    """

    image: np.ndarray
    quad: np.ndarray
    landmarks: np.ndarray
    transform: np.ndarray
    face: Face | None = field(default=None)
    index: int | None = field(default=None)

    @property
    def size(self) -> int:
        """Side of the aligned image in pixels."""
        return int(self.image.shape[0])

    def to_original(self, points: np.ndarray) -> np.ndarray:
        """Map ``[..., 2]`` aligned pixel coordinates to original-image pixel coordinates."""
        return map_points(self.transform, points)

    def to_aligned(self, points: np.ndarray) -> np.ndarray:
        """Map ``[..., 2]`` original-image pixel coordinates to aligned pixel coordinates."""
        return map_points(np.linalg.inv(self.transform), points)

    @property
    def aligned_landmarks(self) -> np.ndarray:
        """``[68, 2]`` landmarks in aligned-image pixel coordinates."""
        return self.to_aligned(self.landmarks)


def map_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a ``[3, 3]`` projective matrix to ``[..., 2]`` points.

    Args:
        matrix: ``[3, 3]`` matrix acting on homogeneous column vectors ``(x, y, 1)``.
        points: ``[..., 2]`` array of ``(x, y)``.

    Returns:
        ``[..., 2]`` float64 mapped points.
    """
    pts = np.asarray(points, dtype=np.float64)
    homog = pts @ matrix[:, :2].T + matrix[:, 2]  # [..., 3]
    return homog[..., :2] / homog[..., 2:]


# ----------------------------------------------------------------------------------------------
# FFHQ geometry (pure numpy)


def ffhq_quad(landmarks: np.ndarray) -> np.ndarray:
    """The FFHQ crop square for a face, from its 68 landmarks.

    The recipe of the FFHQ data set: the square is centred a little below the midpoint of the
    eyes, turned so that its x-axis follows the eye line (corrected by the eye-to-mouth
    direction, which is less sensitive to a head turn), and sized from the larger of the eye
    distance and the eye-to-mouth distance.

    Args:
        landmarks: ``[68, 2]`` iBUG 300-W points ``(x, y)``.

    Returns:
        ``[4, 2]`` float64 corners: top-left, bottom-left, bottom-right, top-right (as seen in
        the aligned image), which is the order PIL's QUAD transform takes.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"landmarks must have shape [68, 2], got {list(lm.shape)}")
    eye_left = lm[36:42].mean(axis=0)  # the subject's right eye, on the image's left
    eye_right = lm[42:48].mean(axis=0)
    mouth_left, mouth_right = lm[48], lm[54]  # mouth corners
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    mouth_avg = (mouth_left + mouth_right) * 0.5
    eye_to_mouth = mouth_avg - eye_avg

    # x: the eye line blended with the eye-to-mouth line turned by -90 degrees (so both point
    # "right" for an upright face); y: x turned by +90 degrees (pointing down in image space).
    x = eye_to_eye - np.flipud(eye_to_mouth) * np.array([-1.0, 1.0])
    norm = np.hypot(*x)
    if not np.isfinite(norm) or norm == 0:
        raise MicromotionError("degenerate landmarks: eyes and mouth coincide")
    x = x / norm
    x = x * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * np.array([-1.0, 1.0])
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])  # [4, 2]


def quad_transform(quad: np.ndarray, size: int) -> np.ndarray:
    """The ``[3, 3]`` affine map from aligned pixel coordinates to the coordinates of ``quad``.

    The aligned image's outer corner ``(-0.5, -0.5)`` (the outer edge of pixel 0) lands on
    ``quad[0]``, ``(size - 0.5, -0.5)`` on ``quad[3]`` and ``(-0.5, size - 0.5)`` on
    ``quad[1]``: PIL samples pixel centres at ``+0.5`` of its continuous coordinates, so this is
    the map the resampling actually applies.

    Args:
        quad: ``[4, 2]`` corners as returned by :func:`ffhq_quad` (a parallelogram).
        size: Side of the aligned image in pixels.

    Returns:
        ``[3, 3]`` float64 matrix acting on ``(x, y, 1)``.
    """
    q = np.asarray(quad, dtype=np.float64)
    ex = (q[3] - q[0]) / size  # original-pixel step per aligned pixel along x   [2]
    ey = (q[1] - q[0]) / size  # ... along y                                      [2]
    origin = q[0] + 0.5 * (ex + ey)  # where aligned pixel (0, 0)'s centre lands  [2]
    return np.array(
        [[ex[0], ey[0], origin[0]], [ex[1], ey[1], origin[1]], [0.0, 0.0, 1.0]], dtype=np.float64
    )


def quad_size(quad: np.ndarray) -> float:
    """Side length of an FFHQ quad (``qsize`` in the recipe) in its pixel units."""
    q = np.asarray(quad, dtype=np.float64)
    return float(np.hypot(*(q[3] - q[0])))


def _check_image(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as a C-contiguous ``[H, W, 3]`` uint8 array (dlib needs exactly that)."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected a [H, W, 3] uint8 RGB image, got {arr.dtype} {list(arr.shape)}")
    return np.ascontiguousarray(arr)
