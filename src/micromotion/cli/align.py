"""``micromotion align``: photos → FFHQ-aligned face crops with their geometry."""

from __future__ import annotations

from pathlib import Path

import click

from micromotion.cli._progress import run_job
from micromotion.faces import MIN_FACE


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
    from micromotion.errors import MicromotionError
    from micromotion.pipelines.align import align_photos

    report = run_job(
        align_photos,
        images,
        unit="image",
        bars=len(images) > 1,
        outdir=outdir,
        size=size,
        face=face,
        all_faces=all_faces,
        min_face=min_face,
        cnn_fallback=not no_cnn,
    )
    for done in report.done:
        click.echo(f"{done.image.name}: face {done.face_index} ({done.detector}) -> {done.output}")
    for message in report.failures:
        click.echo(f"failed: {message}", err=True)
    if report.failures:
        raise MicromotionError(f"{len(report.failures)} of {report.total} images failed")
