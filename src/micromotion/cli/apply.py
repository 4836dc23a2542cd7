"""``micromotion apply``: render a micromotion clip for one face."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from micromotion.cli._common import (
    DEFAULT_GENERATOR,
    apply_preset,
    device_option,
    encoder_options,
    face_option,
    file_option,
    generator_option,
    inversion_options,
    no_align_option,
    preset_option,
    settings_from,
    truncation_option,
)
from micromotion.cli._progress import run_job
from micromotion.core.seeds import MAX_SEED


@click.command()
@click.argument("micromotions", nargs=-1, metavar="[MICROMOTION]...")
@click.option(
    "--micromotion",
    "extra",
    multiple=True,
    metavar="SPEC",
    help="Another micromotion (file or zoo name); repeat to compose.",
)
@click.option(
    "--strength",
    "strengths",
    multiple=True,
    type=float,
    metavar="S",
    help="Strength per micromotion, in order (one value applies to all)  [default: 5]",
)
@generator_option(default=DEFAULT_GENERATOR)
@file_option("--image", help="A face photo: aligned, inverted, then animated.")
@file_option("--latent", help="W+ code .npy.")
@click.option("--index", type=int, default=None, help="Row of --latent when it holds several.")
@click.option(
    "--seed", type=click.IntRange(0, MAX_SEED), default=None, help="Start from a sampled face."
)
@truncation_option
@click.option("--frames", type=click.IntRange(2, 10_000), default=100, show_default=True)
@click.option("--fps", type=click.FloatRange(1, 240), default=30, show_default=True)
@click.option("--layers", default=None, metavar="LIST", help="Layers to move, e.g. 0-7.")
@click.option("--loop", type=click.Choice(["none", "pingpong"]), default="none", show_default=True)
@click.option(
    "--noise-mode",
    type=click.Choice(["const", "random", "none"]),
    default="const",
    show_default=True,
)
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True)
@click.option(
    "--normalize",
    type=click.Choice(["clamp", "minmax"]),
    default="clamp",
    show_default=True,
    help="Frames to 8 bits by clipping to [-1, 1], or min-max per frame as the paper's renderer.",
)
@inversion_options(
    steps_help="Inversion steps for --image.",
    lpips_help="Invert --image with LPIPS-VGG  [default: when its weights are cached]",
)
@encoder_options
@face_option("Which face of --image.")
@no_align_option("--image is an FFHQ-aligned crop already.")
@click.option(
    "--paste-back",
    is_flag=True,
    help="Frames show the whole --image photo with the moving face blended in.",
)
@preset_option(
    help="Render as the paper's main.py: --generator ffhq-rosinality, --inverter "
    "restyle-psp-ffhq --iterations 5 --alignment paper, --normalize minmax; for one of its five "
    "directions --frames 100 --strength 4.95 --fps 30, for a `discover text` micromotion "
    "--frames 90 --strength 7.12 --fps 60. Options given as well override it; OUT.json "
    "records which."
)
@click.option(
    "-o", "--output", required=True, type=click.Path(path_type=Path), help=".mp4/.gif/.png"
)
@device_option
def apply(
    micromotions: tuple[str, ...],
    extra: tuple[str, ...],
    image: Path | None,
    face: int | None,
    no_align: bool,
    paste_back: bool,
    **job: Any,
) -> None:
    """Animate a face along MICROMOTION(s): frame i is w + (i/(frames-1))·Σ strength·d.

    The face is a photo (--image: aligned, inverted, and the aligned input, reconstruction and
    code saved beside the video as OUT_aligned.png, OUT_recon.png and OUT_latent.npy), a code
    (--latent) or a sampled face (--seed). --preset paper sets every option the paper's
    main.py fixed; options typed as well win, each named in a note: line and in OUT.json.

    Refused before rendering: a micromotion whose direction is zero on the layers it moves
    (nothing would move), strengths that are not finite or overflow float32, and outputs that
    would overwrite an input. Warned: a strength that drives most of the last frame to pure
    black or white (the clip is written; try a smaller --strength).
    """
    from micromotion.errors import MicromotionError
    from micromotion.pipelines.animate import ClipSettings, PhotoSettings, animate, preset_render

    specs = list(micromotions) + list(extra)
    if not specs:
        raise MicromotionError("give a micromotion (a file or a zoo name such as smile)")
    if image is None and (face is not None or no_align or paste_back):
        raise MicromotionError("--face, --no-align and --paste-back only apply to --image")
    if paste_back and no_align:
        raise MicromotionError(
            "--paste-back needs alignment; it cannot be combined with --no-align"
        )
    if no_align and face is not None:
        raise MicromotionError("--face needs alignment; it cannot be combined with --no-align")
    # The paper's two modes render differently: which one is known from the micromotion.
    mode = preset_render(specs) if job["preset"] is not None else ""
    preset = apply_preset(job, mode)  # fills what was not typed, the generator included
    clip = settings_from(ClipSettings, job)
    photo = settings_from(PhotoSettings, job, align=not no_align, face=face, paste_back=paste_back)
    # The other options are the pipeline's parameters, by name.
    done = run_job(
        animate, specs, unit="frame", image=image, clip=clip, photo=photo, preset=preset, **job
    )
    if done.photo_files is not None and image is not None:
        names = ", ".join(p.name for p in done.photo_files.values())
        click.echo(
            f"{image.name}: reconstruction PSNR {done.psnr:.2f} dB ({done.loss}); saved {names}"
        )
    click.echo(f"wrote {done.output} ({done.total_frames} frames) and {done.record_path.name}")
