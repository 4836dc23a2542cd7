"""``micromotion invert``: face photos → aligned crops, W+ codes, reconstructions and PSNR."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from micromotion.cli import _common as common
from micromotion.cli._progress import run_job
from micromotion.core.seeds import MAX_SEED
from micromotion.errors import MicromotionError


@click.command("invert")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@common.generator_option
@click.option("-o", "--outdir", required=True, type=click.Path(path_type=Path))
@common.inversion_options(
    lpips_help="LPIPS-VGG loss  [default: when its weights are cached, else pixel loss]"
)
@click.option("--space", type=click.Choice(["w+", "w"]), default="w+", show_default=True)
@click.option("--optimize-noise", is_flag=True, help="Also fit per-image noise maps.")
@common.encoder_options
@common.no_align_option("The images are already FFHQ-aligned crops.")
@common.face_option()
@click.option("--batch-size", type=click.IntRange(1), default=4, show_default=True)
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True)
@common.device_option
def invert_cmd(images: tuple[Path, ...], no_align: bool, **job: Any) -> None:
    """Invert IMAGES into W+: OUTDIR/NAME.npy, NAME_recon.png and NAME.json (PSNR).

    Each photo's face is detected and FFHQ-aligned first (NAME_aligned.png; the sidecar keeps
    the transform back to the photo) unless --no-align says the images are aligned crops.
    """
    from micromotion.inversion import InversionConfig
    from micromotion.pipelines.invert import invert_photos

    if no_align and job["face"] is not None:
        raise MicromotionError("--face needs alignment; it cannot be combined with --no-align")
    from micromotion.pipelines.photo import InverterSettings

    config = common.settings_from(InversionConfig, job)
    job["inverter"] = common.settings_from(InverterSettings, job)
    # The other options are the pipeline's parameters, by name.
    report = run_job(invert_photos, images, unit="step", config=config, align=not no_align, **job)
    for done in report.done:
        click.echo(f"{done.image.name}: PSNR {done.psnr:.2f} dB -> {done.code}")
    if report.failures:
        for message in report.failures:
            click.echo(f"failed: {message}", err=True)
        raise MicromotionError(f"{len(report.failures)} of {report.total} images failed")
