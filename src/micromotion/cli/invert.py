"""``micromotion invert``: face photos → aligned crops, W+ codes, reconstructions and PSNR."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import click

from micromotion.cli._common import (
    device_option,
    face_option,
    generator_option,
    inversion_options,
    no_align_option,
)
from micromotion.cli._progress import Bars
from micromotion.core.seeds import MAX_SEED
from micromotion.errors import MicromotionError


@click.command("invert")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@generator_option
@click.option("-o", "--outdir", required=True, type=click.Path(path_type=Path))
@inversion_options(
    lpips_help="LPIPS-VGG loss  [default: when its weights are cached, else pixel loss]"
)
@click.option("--space", type=click.Choice(["w+", "w"]), default="w+", show_default=True)
@click.option("--optimize-noise", is_flag=True, help="Also fit per-image noise maps.")
@no_align_option("The images are already FFHQ-aligned crops.")
@face_option()
@click.option("--batch-size", type=click.IntRange(1), default=4, show_default=True)
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True)
@device_option
def invert_cmd(
    images: tuple[Path, ...],
    generator_spec: str,
    outdir: Path,
    steps: int,
    space: Literal["w+", "w"],
    optimize_noise: bool,
    no_align: bool,
    face: int | None,
    use_lpips: bool | None,
    batch_size: int,
    seed: int,
    device: str,
) -> None:
    """Invert IMAGES into W+: OUTDIR/NAME.npy, NAME_recon.png and NAME.json (PSNR).

    Each photo's face is detected and FFHQ-aligned first (NAME_aligned.png; the sidecar keeps
    the transform back to the photo) unless --no-align says the images are aligned crops.
    """
    from micromotion.inversion import InversionConfig
    from micromotion.pipelines.invert import invert_photos

    if no_align and face is not None:
        raise MicromotionError("--face needs alignment; it cannot be combined with --no-align")
    config = InversionConfig(steps=steps, space=space, optimize_noise=optimize_noise, seed=seed)
    with Bars(unit="step") as bars:
        report = invert_photos(
            images,
            outdir=outdir,
            generator=generator_spec,
            config=config,
            align=not no_align,
            face=face,
            lpips=use_lpips,
            batch_size=batch_size,
            device=device,
            progress=bars,
        )
    for done in report.done:
        click.echo(f"{done.image.name}: PSNR {done.psnr:.2f} dB -> {done.code}")
    if report.failures:
        for message in report.failures:
            click.echo(f"failed: {message}", err=True)
        raise MicromotionError(f"{len(report.failures)} of {report.total} images failed")
