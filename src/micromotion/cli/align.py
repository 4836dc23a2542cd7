"""``micromotion align``: photos → FFHQ-aligned face crops with their geometry."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click
from tqdm import tqdm

from micromotion._io import provenance, sha256_file, write_json_atomic
from micromotion.errors import MicromotionError
from micromotion.faces import MIN_FACE
from micromotion.images import read_rgb, save_png


def _output_stems(images: tuple[Path, ...], outdir: Path, all_faces: bool) -> None:
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
    if outdir.exists() and not outdir.is_dir():
        raise MicromotionError(f"{outdir}: exists and is not a directory")
    inputs = {p.resolve() for p in images}
    for stem in stems:
        for name in (f"{stem}.png", f"{stem}.json"):
            if (outdir / name).resolve() in inputs:
                raise MicromotionError(
                    f"{outdir / name}: is an input and would be overwritten; choose another -o"
                )


@click.command("align")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--outdir", required=True, type=click.Path(path_type=Path))
@click.option("--size", type=click.IntRange(16, 4096), default=1024, show_default=True)
@click.option(
    "--face",
    type=click.IntRange(0),
    default=None,
    metavar="N",
    help="Which face: 0 = largest (the default), 1 = next largest, ...",
)
@click.option("--all-faces", is_flag=True, help="Align every face: NAME_face0.png, ...")
@click.option(
    "--min-face",
    type=click.IntRange(1),
    default=MIN_FACE,
    show_default=True,
    metavar="PX",
    help="Smallest face accepted: side of its crop in photo pixels (~4x the eye distance).",
)
@click.option("--no-cnn", is_flag=True, help="Skip the slow CNN detector when HOG finds nothing.")
def align(
    images: tuple[Path, ...],
    outdir: Path,
    size: int,
    face: int | None,
    all_faces: bool,
    min_face: int,
    no_cnn: bool,
) -> None:
    """FFHQ-align the faces in IMAGES: OUTDIR/NAME.png plus NAME.json (geometry, provenance).

    The JSON's `transform` maps aligned pixel coordinates (x, y, 1) to the photo's, so an
    edited crop can be pasted back.
    """
    from micromotion import faces as F

    if face is not None and all_faces:
        raise MicromotionError("give --face N or --all-faces, not both")
    _output_stems(images, outdir, all_faces)
    F.check_backend()  # a missing dlib is one error, not one failure per image

    failures: list[str] = []
    for path in tqdm(images, desc="align", unit="image", disable=None if len(images) > 1 else True):
        try:
            image = read_rgb(path)  # its errors already name the file
            try:
                aligned = F.align_image(
                    image,
                    size=size,
                    face=face,
                    all_faces=all_faces,
                    min_face=min_face,
                    cnn_fallback=not no_cnn,
                )
            except MicromotionError as exc:
                raise MicromotionError(f"{path}: {exc}") from None
        except MicromotionError as exc:
            if len(images) == 1:
                raise
            failures.append(str(exc))
            tqdm.write(f"failed: {exc}", file=sys.stderr)
            continue
        digest = sha256_file(path)
        for result in aligned:
            stem = f"{path.stem}_face{result.index}" if all_faces else path.stem
            det = result.face
            assert det is not None  # align_image always records the detection
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
            save_png(result.image, outdir / f"{stem}.png", text={"micromotion": json.dumps(record)})
            write_json_atomic(outdir / f"{stem}.json", record)
            tqdm.write(f"{path.name}: face {result.index} ({det.detector}) -> {outdir / stem}.png")
    if failures:
        raise MicromotionError(f"{len(failures)} of {len(images)} images failed")
