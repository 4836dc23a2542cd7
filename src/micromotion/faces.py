"""Face detection, 68-point landmarks and FFHQ alignment.

Detection and landmarks use dlib (HOG detector, the ``mmod`` CNN detector as a fallback, and
the iBUG 68-point shape predictor shipped in ``face_recognition_models``). Alignment follows the
recipe that built the FFHQ data set (Karras et al. 2019, ``recreate_aligned_images``): an
oriented square ("quad") is placed from the eyes and mouth, the photo is shrunk, cropped and
padded around it, and the quad is resampled to a square image. StyleGAN2 generators trained on
FFHQ expect exactly this framing, so inversion needs it.

Coordinates are pixel indices (the centre of pixel ``(col, row)`` is at ``x = col, y = row``),
as dlib reports them. Everything here is pure: arrays in, arrays out, no file I/O.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from micromotion.errors import MicromotionError

__all__ = [
    "HOG_THRESHOLD",
    "MIN_FACE",
    "AlignedFace",
    "Face",
    "align_face",
    "align_image",
    "check_backend",
    "detect_faces",
    "ffhq_quad",
    "map_points",
    "quad_size",
    "quad_transform",
]

MIN_FACE = 64
"""Smallest usable quad side in original pixels (about 16 px between the eyes).

Below this the landmarks the alignment rests on are a pixel or two apart (the eye corners of a
16 px eye distance are ~4 px apart), so a one-pixel landmark error tilts or shifts the crop by
several per cent, and the crop is upsampled more than 16x for a 1024 px generator: nothing an
inversion could recover a face from.
"""
_MIN_DETECT_SIDE = 16  # px; dlib's CNN detector fails on images with a side under ~10 px

HOG_THRESHOLD = 0.3
"""Smallest HOG detection score kept (dlib's own default is 0).

With one upsampling, dlib's HOG detector scores faces above 1 (1.07-1.57 for the astronaut photo
upright, turned 20 degrees, gray, mirrored, from 180 to 4096 px) but also fires on the round
mission patch on the suit in that photo at 0.03-0.13, with a box as large as the face, so "the
largest face" could be a patch. A weak real face dropped by this threshold is not lost when it is
the only one: the CNN fallback runs when HOG keeps nothing.
"""

_LANDMARKS_FILE = "shape_predictor_68_face_landmarks.dat"
_CNN_FILE = "mmod_human_face_detector.dat"


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
        img = img.resize((new_w, new_h), Image.LANCZOS)
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
        padding = tuple(max(p, round(qsize * 0.3)) for p in padding)
        img = Image.fromarray(_pad_and_blend(np.asarray(img), padding, qsize))
        work = work + np.array(padding[:2], dtype=np.float64)

    # Transform: bilinear resampling of the quad onto a square. PIL's continuous coordinates put
    # pixel centres at +0.5, hence the shift.
    if transform_size is None:
        transform_size = int(min(max(size, math.ceil(qsize)), 4 * size))
    out = img.transform(
        (transform_size, transform_size),
        Image.QUAD,
        (work + 0.5).flatten().tolist(),
        Image.BILINEAR,
    )
    if size != transform_size:
        out = out.resize((size, size), Image.LANCZOS)
    return AlignedFace(
        image=np.asarray(out, dtype=np.uint8),
        quad=_frozen_array(sampled, (4, 2), "quad"),
        landmarks=landmarks,
        transform=_frozen_array(quad_transform(sampled, size), (3, 3), "transform"),
    )


# ----------------------------------------------------------------------------------------------
# Detection (dlib)


def _dlib() -> Any:
    """Import dlib, or say how to install it."""
    try:
        import dlib
    except ImportError:
        raise MicromotionError(
            "face detection needs dlib: pip install dlib (it builds with CMake)"
        ) from None
    return dlib


def _model_file(name: str) -> Path:
    """Path of a dlib model file in ``face_recognition_models``, found without importing it.

    Importing that package fails on Pythons without ``pkg_resources``; only its data is needed.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MicromotionError(
            "face landmarks need dlib's model files: pip install face_recognition_models"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise MicromotionError(f"{path}: missing; reinstall face_recognition_models")
    return path


@functools.lru_cache(maxsize=1)
def _hog_detector() -> Any:
    return _dlib().get_frontal_face_detector()


@functools.lru_cache(maxsize=1)
def _cnn_detector() -> Any:
    # The mmod model is small (0.7 MB) but only needed when HOG finds nothing.
    return _dlib().cnn_face_detection_model_v1(str(_model_file(_CNN_FILE)))


@functools.lru_cache(maxsize=1)
def _shape_predictor() -> Any:
    # 100 MB: loading takes a second or more, so once per process.
    return _dlib().shape_predictor(str(_model_file(_LANDMARKS_FILE)))


def check_backend() -> None:
    """Raise a one-line :class:`MicromotionError` now if dlib or its models are missing.

    Lets a command fail before any work rather than once per image.
    """
    _dlib()
    _model_file(_LANDMARKS_FILE)
    _model_file(_CNN_FILE)


def _check_image(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as a C-contiguous ``[H, W, 3]`` uint8 array (dlib needs exactly that)."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected a [H, W, 3] uint8 RGB image, got {arr.dtype} {list(arr.shape)}")
    return np.ascontiguousarray(arr)


def _downscaled(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``image`` reduced so its longest side is at most ``max_side``, and the scale used."""
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale >= 1.0:
        return image, 1.0
    new_w, new_h = max(round(w * scale), 1), max(round(h * scale), 1)
    # PIL widens its filter when reducing, so this is antialiased.
    small = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR))
    return small, new_w / w


def detect_faces(
    image: np.ndarray,
    *,
    upsample: int = 1,
    cnn_fallback: bool = True,
    max_side: int = 1600,
    cnn_max_side: int = 800,
    hog_threshold: float = HOG_THRESHOLD,
) -> list[Face]:
    """Find faces and their 68 landmarks.

    The HOG detector runs on a copy no larger than ``max_side`` (it is linear in the pixel
    count, and faces in big photos are big); when it finds nothing and ``cnn_fallback`` is set,
    dlib's CNN (``mmod``) detector, which also finds turned and partly hidden faces, runs on a
    copy no larger than ``cnn_max_side`` (it is slow on a CPU). Landmarks are always placed on
    the full-resolution image, so alignment loses nothing to the reduced copies.

    Args:
        image: ``[H, W, 3]`` uint8 RGB.
        upsample: Times the HOG detector doubles the image first (its window is 80 px, so 1
            finds faces down to ~40 px). The CNN, whose window is already ~40 px, doubles one
            time less.
        cnn_fallback: Try the CNN detector when HOG finds nothing.
        max_side: Longest side of the copy HOG runs on.
        cnn_max_side: Longest side of the copy the CNN runs on.
        hog_threshold: Smallest HOG score kept (see :data:`HOG_THRESHOLD`).

    Returns:
        Faces sorted largest box first (ties: leftmost, then topmost).

    Raises:
        MicromotionError: If dlib or its model files are missing.
    """
    image = _check_image(image)
    if upsample < 0:
        raise ValueError(f"upsample must be >= 0, got {upsample}")
    if min(image.shape[:2]) < _MIN_DETECT_SIDE:
        return []  # no usable face fits, and dlib's CNN crashes on images this small
    small, scale = _downscaled(image, max_side)
    try:
        rects, scores, _ = _hog_detector().run(small, upsample, hog_threshold)
        found = [(r, s, "hog") for r, s in zip(rects, scores, strict=True)]
        if not found and cnn_fallback:
            small, scale = _downscaled(image, cnn_max_side)
            if min(small.shape[:2]) >= _MIN_DETECT_SIDE:  # thin images shrink below it
                found = [
                    (d.rect, d.confidence, "cnn")
                    for d in _cnn_detector()(small, max(upsample - 1, 0))
                ]
    except RuntimeError as exc:  # dlib's own errors are multi-line C++ reports
        raise MicromotionError(f"face detection failed ({_first_line(exc)})") from None

    dlib = _dlib()
    predictor = _shape_predictor()
    faces = []
    for rect, score, detector in found:
        # Box edges are pixel indices of the reduced copy: scale about pixel centres.
        box = tuple(
            round((v + 0.5) / scale - 0.5)
            for v in (rect.left(), rect.top(), rect.right(), rect.bottom())
        )
        shape = predictor(image, dlib.rectangle(*box))
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)  # [68, 2]
        faces.append(Face(box=box, landmarks=points, score=score, detector=detector))
    faces.sort(key=lambda f: (-f.area, f.box[0], f.box[1]))
    return faces


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0].strip() if lines else type(exc).__name__


def align_image(
    image: np.ndarray,
    *,
    size: int = 1024,
    face: int | None = None,
    all_faces: bool = False,
    min_face: int = MIN_FACE,
    cnn_fallback: bool = True,
    transform_size: int | None = None,
) -> list[AlignedFace]:
    """Detect faces in a photo and FFHQ-align them.

    Args:
        image: ``[H, W, 3]`` uint8 RGB.
        size: Side of the aligned images.
        face: Which face (0 = largest, then by decreasing box size); default the largest.
        all_faces: Align every usable face (faces under ``min_face`` are skipped with a
            warning); excludes ``face``.
        min_face: Smallest quad side accepted, in original pixels (see :data:`MIN_FACE`).
        cnn_fallback: Try the CNN detector when HOG finds nothing.
        transform_size: See :func:`align_face`.

    Returns:
        One aligned face, or with ``all_faces`` every usable one, largest first; each carries
        its detection (``face``) and its position among the detections (``index``).

    Raises:
        MicromotionError: No face found, ``face`` out of range, or the face (with
            ``all_faces``: every face) is smaller than ``min_face``.
    """
    if all_faces and face is not None:
        raise ValueError("give face or all_faces, not both")
    faces = detect_faces(image, cnn_fallback=cnn_fallback)
    if not faces:
        raise MicromotionError("no face found")
    if face is not None and not 0 <= face < len(faces):
        found = f"{len(faces)} face" + ("s" if len(faces) > 1 else "")
        raise MicromotionError(f"face {face} requested but {found} found (0-{len(faces) - 1})")
    chosen = list(enumerate(faces)) if all_faces else [(face or 0, faces[face or 0])]

    usable = []
    for index, det in chosen:
        qsize = quad_size(ffhq_quad(det.landmarks))
        if qsize >= min_face:
            usable.append((index, det))
        elif all_faces:
            warnings.warn(
                f"skipping face {index}: too small ({qsize:.0f} px, need at least {min_face})",
                stacklevel=2,
            )
        else:
            raise MicromotionError(
                f"face too small ({qsize:.0f} px across the crop); need at least {min_face} px"
            )
    if not usable:
        raise MicromotionError(
            f"all {len(faces)} faces too small (need at least {min_face} px across the crop)"
        )
    results = []
    for index, det in usable:
        aligned = align_face(image, det.landmarks, size=size, transform_size=transform_size)
        results.append(
            AlignedFace(
                image=aligned.image,
                quad=aligned.quad,
                landmarks=aligned.landmarks,
                transform=aligned.transform,
                face=det,
                index=index,
            )
        )
    return results
