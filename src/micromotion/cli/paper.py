"""``micromotion paper``: the paper's ``main.py``, option for option, in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from micromotion.cli._common import device_option, file_option, id_weights_option
from micromotion.cli._progress import run_job
from micromotion.core.defaults import PAPER_CATEGORIES
from micromotion.core.seeds import MAX_SEED


@click.command("paper")
@click.option(
    "--category",
    type=click.Choice(PAPER_CATEGORIES),
    default="smile",
    show_default=True,
    help="One of the paper's five directions, or custom: a new one from --template.",
)
@file_option("--image", required=True, help="The face photo to animate (main.py: --input).")
@click.option(
    "--template",
    default=None,
    metavar="TEXT",
    help="custom: the prompt with a {degree} slot, e.g. 'a person with {degree} smile'.",
)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=1,
    show_default=True,
    help="custom: the start face whose anchors give the direction.",
)
@click.option(
    "--num-latent",
    type=click.IntRange(1),  # the pipeline's MAX_NUM_LATENT bounds it (keeps torch out)
    default=1,
    show_default=True,
    help="custom: seeds from --seed on, each with its own micromotion and clip (OUT_sS.*).",
)
@click.option(
    "--scale",
    type=click.FloatRange(0, 1e6, min_open=True),
    default=None,
    help="The direction's multiplier: the last frame is w + (frames-1)/100 * scale * d  "
    "[default: 5, custom 8]",
)
@click.option(
    "--generator",
    default=None,
    metavar="SPEC",
    help="Another generator than the paper's (ffhq-rosinality); recorded as an override.",
)
@click.option(
    "--inverter",
    default=None,
    metavar="NAME|CKPT|projector",
    help="Another inverter than the paper's (restyle-psp-ffhq); recorded as an override.",
)
@click.option(
    "--clip",
    default=None,
    metavar="MODEL:WEIGHTS",
    help="custom: another CLIP than the paper's (ViT-B-32:openai); recorded as an override.",
)
@file_option(
    "--direction",
    metavar="FILE",
    help="The category's direction, where main.py read pregen_latents/C/d_latent  "
    "[default: the packaged copy]",
)
@id_weights_option("custom: ArcFace IR-SE50 weights (model_ir_se50.pth) for the identity loss.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The clip (.mp4, .gif, .png); custom also writes OUT.safetensors and its files.",
)
@device_option
def paper(**job: Any) -> None:
    """Run the paper's main.py: animate a photo with one of its directions, or a new one.

    --category C renders the authors' direction C on the photo as main.py does: ReStyle-pSp
    inversion (5 iterations) of the paper's 256 px crop, 100 frames w + (i/100)*5*d at 30 fps,
    each stretched by its min and max. --category custom --template T first decodes a new
    micromotion from T as main.py does (seed 1, degrees no..100%, 40 CLIP steps, the paper's
    robust PCA at rank 4, ending at the 90% anchor as its code did), then renders 90 frames
    w + (i/100)*8*d at 60 fps. Every setting is --preset paper's (see `discover text --help`,
    `apply --help`); options given here that change one are printed as note: lines and
    recorded in the files.
    """
    from micromotion.pipelines.paper import reproduce_paper

    category = job.pop("category")
    done = run_job(reproduce_paper, category, unit="step", **job)
    for note in done.notes:
        click.echo(f"note: {note}", err=True)
    for discovery in done.discoveries:
        mm = discovery.micromotion
        click.echo(
            f"wrote {discovery.files['micromotion']} (|d| = {mm.norm:.4g}, seed "
            f"{mm.metadata['seed']}, {mm.num_anchors} anchors) and its side files"
        )
    for clip in done.clips:
        click.echo(
            f"wrote {clip.output} ({clip.total_frames} frames, reconstruction PSNR "
            f"{clip.psnr:.2f} dB) and {clip.record_path.name}"
        )
