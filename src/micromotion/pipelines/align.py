"""Align photos: each face FFHQ-aligned, saved as a PNG with its geometry and provenance.

For ``photo.jpg``: ``photo.png`` and ``photo.json`` (detector, box, landmarks, quad and the
3×3 transform from the crop back to the photo), or ``photo_face{i}.*`` for every face.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from micromotion.core.io import sha256_file
from micromotion.core.outputs import check_writes
from micromotion.core.progress import Progress
from micromotion.core.provenance import provenance
from micromotion.errors import MicromotionError, ParameterError
from micromotion.faces import MIN_FACE, align_image, check_backend
from micromotion.media.images import read_rgb
from micromotion.pipelines.outputs import (
    OutputSet,
    check_outdir,
    lock_dir,
    save_png_record,
    save_record,
)


@dataclass(frozen=True)
class AlignedPhoto:
    """One aligned face: its photo, which face, the detector, and the crop written."""

    image: Path
    face_index: int
    detector: str
    output: Path


@dataclass
class AlignReport:
    """What :func:`align_photos` did: the faces aligned and the photos that failed."""

    done: list[AlignedPhoto] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    total: int = 0


def _check_outputs(images: Sequence[Path], outdir: Path, all_faces: bool) -> None:
    """Refuse, before any work, inputs whose outputs would clash or overwrite an input."""
    stems = [p.stem for p in images]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise MicromotionError(f"several inputs share the name {dupes[0]!r}; outputs would clash")
    if all_faces:
        # `a_face1.png` as an input would collide with the second face of `a.png`.
        for stem in stems:
            match = re.fullmatch(r"(.*)_face\d+", stem)
            if match and match.group(1) in stems:
                raise MicromotionError(
                    f"input {stem!r} would clash with a face of {match.group(1)!r}; rename it"
                )
    check_outdir(outdir)
    for path in images:
        check_writes(_face_files(outdir, path, 0, all_faces), reads=images)


def _face_files(outdir: Path, photo: Path, index: int, all_faces: bool) -> dict[str, Path]:
    stem = f"{photo.stem}_face{index}" if all_faces else photo.stem
    return {"crop": outdir / f"{stem}.png", "record": outdir / f"{stem}.json"}


def align_photos(
    images: Sequence[str | os.PathLike[str]],
    *,
    outdir: str | os.PathLike[str],
    size: int = 1024,
    face: int | None = None,
    all_faces: bool = False,
    min_face: int = MIN_FACE,
    cnn_fallback: bool = True,
    progress: Progress | None = None,
) -> AlignReport:
    """FFHQ-align the faces in ``images`` into ``outdir``.

    A photo that fails (unreadable, no face, face too small) is recorded in the report and
    the others go on; with a single photo its error is raised instead.

    Args:
        images: The photos.
        outdir: Where the crops go (created if need be).
        size: Side of the crops in pixels.
        face: Which face: 0 = largest (the default), 1 = next largest, ...
        all_faces: Align every face (``NAME_face0.png``, ...).
        min_face: Smallest face accepted: side of its crop in photo pixels.
        cnn_fallback: Try dlib's CNN detector when HOG finds nothing.
        progress: Progress reporting (``align``, per photo).

    Returns:
        The faces aligned and the failures.
    """
    paths = [Path(p) for p in images]
    out = Path(outdir)
    if face is not None and all_faces:
        raise ParameterError.worded("give {face} N or {all_faces}, not both", "face", "all_faces")
    _check_outputs(paths, out, all_faces)
    check_backend()  # a missing dlib is one error, not one failure per image
    with lock_dir(out):
        return _align(paths, out, size, face, all_faces, min_face, cnn_fallback, progress)


def _align(
    paths: list[Path],
    out: Path,
    size: int,
    face: int | None,
    all_faces: bool,
    min_face: int,
    cnn_fallback: bool,
    progress: Progress | None,
) -> AlignReport:
    report = AlignReport(total=len(paths))
    for done, path in enumerate(paths, start=1):
        try:
            image = read_rgb(path)  # its errors already name the file
            try:
                aligned = align_image(
                    image,
                    size=size,
                    face=face,
                    all_faces=all_faces,
                    min_face=min_face,
                    cnn_fallback=cnn_fallback,
                )
            except MicromotionError as exc:
                raise MicromotionError(f"{path}: {exc}") from None
        except MicromotionError as exc:
            if len(paths) == 1:
                raise
            report.failures.append(str(exc))
            continue
        finally:
            if progress is not None:
                progress("align", done, len(paths), path.name)
        digest = sha256_file(path)
        for result in aligned:
            det = result.face
            assert det is not None  # align_image always records the detection
            assert result.index is not None
            record = provenance(
                command="align",
                image=str(path),
                image_sha256=digest,
                image_size=[int(image.shape[1]), int(image.shape[0])],
                size=size,
                face_index=result.index,
                detector=det.detector,
                score=round(det.score, 4),
                box=list(det.box),
                landmarks=result.landmarks.tolist(),
                quad=result.quad.tolist(),
                transform=result.transform.tolist(),
                transform_maps="aligned pixel (x, y, 1) -> photo pixel (x, y, 1)",
                aligned_landmarks=result.aligned_landmarks.round(3).tolist(),
                min_face=min_face,
                method="FFHQ recipe (NVlabs ffhq-dataset recreate_aligned_images)",
            )
            files = OutputSet(_face_files(out, path, result.index, all_faces), reads=paths)
            with files:  # the crop and its record appear together
                save_png_record(files.path("crop"), result.image, record)
                save_record(files.path("record"), record)
            report.done.append(AlignedPhoto(path, result.index, det.detector, files.files["crop"]))
    return report
