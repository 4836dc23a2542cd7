"""Face detection and 68-point landmarks with dlib — the only module that imports dlib.

Detection uses dlib's HOG detector, the ``mmod`` CNN detector as a fallback, and the iBUG
68-point shape predictor shipped in ``face_recognition_models``. :func:`align_image` detects
and aligns (:func:`micromotion.faces.ffhq.align_face`) in one call.
"""

from __future__ import annotations

import functools
import importlib.util
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from micromotion.errors import MicromotionError
from micromotion.faces.ffhq import align_face
from micromotion.faces.geometry import (
    MIN_FACE,
    AlignedFace,
    Face,
    _check_image,
    ffhq_quad,
    quad_size,
)

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


def _downscaled(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``image`` reduced so its longest side is at most ``max_side``, and the scale used."""
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale >= 1.0:
        return image, 1.0
    new_w, new_h = max(round(w * scale), 1), max(round(h * scale), 1)
    # PIL widens its filter when reducing, so this is antialiased.
    small = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR))
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
        found: list[tuple[Any, float, Literal["hog", "cnn"]]] = [
            (r, s, "hog") for r, s in zip(rects, scores, strict=True)
        ]
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
