"""Faces in: geometry, the FFHQ alignment recipe, dlib detection, and paste-back.

* :mod:`.geometry` — :class:`Face`, :class:`AlignedFace`, the FFHQ quad and its transforms.
* :mod:`.ffhq` — :func:`align_face`, the FFHQ recipe step by step.
* :mod:`.detect` — :func:`detect_faces` and :func:`align_image` (the only dlib user).
* :mod:`.pasteback` — :class:`PasteBack`, edited crops blended back into the photo.
"""

from micromotion.faces.detect import HOG_THRESHOLD, align_image, check_backend, detect_faces
from micromotion.faces.ffhq import align_face
from micromotion.faces.geometry import (
    MIN_FACE,
    AlignedFace,
    Face,
    ffhq_quad,
    map_points,
    quad_size,
    quad_transform,
)

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
